"""`signoff`: the command line.  Exit codes are the contract schedulers rely on.

run: 0 passed (possibly with warnings), 1 blocked by a gate, 2 could not run.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path

from runner import config, pipeline, verify, workspace
from runner.errors import SignoffError
from runner.progress import Progress


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.getLogger("papermill").setLevel(logging.WARNING)
    try:
        return args.command(args)
    except SignoffError as exc:
        print(f"signoff: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("signoff: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the CLI's last line: a message, and the traceback only on request
        print(f"signoff: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        if os.environ.get("SIGNOFF_DEBUG"):
            traceback.print_exc()
        else:
            print("signoff: set SIGNOFF_DEBUG=1 for the traceback", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="signoff",
        description="Evidence-gated model releases from parameterized notebooks.",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="execute the stage notebooks, check the gates, archive the run",
        description="Execute every stage notebook with Papermill, gather the evidence, check the gates, "
        "write the gating report and archive the run folder. Exit 0 passed (or passed with warnings), "
        "1 blocked by a gate, 2 could not run.",
    )
    _common(run)
    run.add_argument("--output-root", type=Path, help="where runs land (default: outputs/ of the project)")
    run.add_argument("--jobs", type=int, default=pipeline.default_jobs(),
                     help="stages run at once (default: number of cores)")
    run.set_defaults(command=_run)

    show = commands.add_parser(
        "params",
        help="show the resolved parameters and what each stage notebook receives",
        description="Resolve a params file (extends, -p overrides, defaults), check it against every stage "
        "notebook's parameters cell, and print the result. Runs nothing. Exit 0 valid, 2 not.",
    )
    _common(show)
    show.set_defaults(command=_params)

    check = commands.add_parser(
        "verify",
        help="check that archived runs were not altered",
        description="Recompute the sha256 of every file of every run under PATH (a run folder, a model folder "
        "or the output root) and check each model's chain of manifests. Exit 0 intact, 1 not (each modified, "
        "missing or added file and each broken link is listed), 2 nothing to check.",
    )
    check.add_argument("path", type=Path, nargs="?", default=None, metavar="PATH",
                       help="what to check (default: outputs/ of the project)")
    check.set_defaults(command=_verify)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("params_file", type=Path, metavar="PARAMS", help="a params file, e.g. params/credit.yaml")
    parser.add_argument("-p", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a dotted key, value parsed as YAML (repeatable): -p stages.train.max_iter=50")
    parser.add_argument("--notebooks", type=Path, help="stage notebooks folder (default: notebooks/ of the project)")


def _layout(args: argparse.Namespace) -> pipeline.Layout:
    root = workspace.project_root(args.params_file.resolve().parent)
    return pipeline.Layout(
        notebooks=args.notebooks or root / "notebooks",
        templates=root / "templates",
        output_root=getattr(args, "output_root", None) or root / "outputs",
    )


def _run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise SignoffError(f"--jobs: expected a number of stages >= 1, got {args.jobs}")
    outcome = pipeline.run(args.params_file, args.overrides, _layout(args), args.jobs, Progress())
    _print_verdict(outcome.verdict)
    print(f"run folder: {outcome.folder}")
    print(f"report:     {outcome.folder / 'html' / 'report.html'}")
    return outcome.exit_code


def _print_verdict(verdict: dict) -> None:
    rows = [("gate", "metric", "observed", "threshold", "severity", "status")]
    for g in verdict["gates"]:
        observed = g["observed"]
        rows.append((
            g["id"], g["metric"],
            f"{observed:.4g}" if isinstance(observed, float) else str(observed),
            " ".join(f"{k} {v:g}" for k, v in g["threshold"].items()),
            g["severity"], g["status"].upper(),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print()
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    for stage in verdict["stages"]:
        if stage["status"] != "passed":
            print(f"stage {stage['name']} {stage['status']}: {stage['error']}")
    print(f"\nverdict: {verdict['verdict']}")


def _params(args: argparse.Namespace) -> int:
    params, found, stage_params = pipeline.prepare(args.params_file, args.overrides, _layout(args))
    print(config.dump_params(params), end="")
    print("# what each stage notebook receives (run_dir becomes the run folder):")
    print(config.dump_params({s.name: stage_params[s.name] for s in found}), end="")
    return 0


def _verify(args: argparse.Namespace) -> int:
    path = args.path or workspace.project_root() / "outputs"
    problems, runs = verify.verify(path)
    for problem in problems:
        print(problem)
    if problems:
        print(f"NOT INTACT: {len(problems)} problems in {runs} runs under {path}")
        return 1
    print(f"intact: {runs} runs under {path}, every file matches its manifest, every chain link holds")
    return 0
