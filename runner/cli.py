"""`signoff`: the command line.  Exit codes are the contract schedulers rely on.

run: 0 passed (possibly with warnings), 1 blocked by a gate, 2 could not run, 3 the model's lock
was held by another command for longer than --wait.

The commands that execute notebooks import the run room (Papermill, nbclient, pandas) when they
are called: a decision, a listing or a verify does not wait seconds for imports it never uses.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from runner import api, config, records
from runner.analysis import workspace
from runner.audit import bundle, redact, verify
from runner.errors import SignoffError
from runner.release import decisions, mlflow_registry, shipped
from runner.run import stopping

if TYPE_CHECKING:
    from runner.run import pipeline
    from runner.run.progress import Progress

OS_ERROR_ADVICE = {
    errno.ENOSPC: "free space on that disk, then run again",
    errno.EDQUOT: "free space within your disk quota, then run again",
    errno.EROFS: "the file system is read-only: choose another --output-root",
    errno.EACCES: "you may not write there: choose another --output-root or fix the permissions",
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "by", "") is None and getattr(args, "key", "") is None and args.command in (_run, _monitor,
                                                                                                 _rerun):
        # a run's starter, when neither --by nor a key (whose principal it would be) is given: the OS user
        from runner.audit import provenance

        args.by = provenance.user()
    logging.getLogger("papermill").setLevel(logging.WARNING)
    os.umask(os.umask(0) | 0o022)  # nothing Signoff or its kernels write is writable by group or others
    try:
        return args.command(args)
    except SignoffError as exc:
        print(f"signoff: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except stopping.Stopped as exc:
        where = f"; the run is archived at {exc.archived}" if exc.archived else "; no run was started"
        print(f"signoff: {exc}{where}", file=sys.stderr)
        return stopping.EXIT_CODE
    except KeyboardInterrupt:
        print("signoff: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a full disk, a read-only folder: the user's to fix, so no traceback
        print(f"signoff: error: {exc.filename or ''}{': ' if exc.filename else ''}{exc.strerror or exc}; "
              f"{OS_ERROR_ADVICE.get(exc.errno, 'fix it and run again')} (a run that was under way stays in its "
              "unfinished .tmp- folder, which `signoff verify` notes; nothing archived was changed)", file=sys.stderr)
        return 2
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
    _execution(run)
    _key(run, "sign the sealed run with this SSH key (its principal in the allowed-signers file starts the run)")
    run.set_defaults(command=_run)

    watch = commands.add_parser(
        "monitor",
        help="check the champion against the newest data",
        description="Run the drift stage (and, with --labels, the validate stage) with the registry's champion "
        "against DATA, judge the params file's monitor_gates, and archive the result under "
        "outputs/<model>.monitor/. Exit 0 healthy, 1 a blocking monitor gate failed (the alert), 2 could not run.",
    )
    _common(watch)
    watch.add_argument("--current", type=Path, required=True, metavar="DATA",
                       help="the newest data, CSV or Parquet, with the champion's feature columns")
    watch.add_argument("--labels", action="store_true",
                       help="DATA holds the target column: also score the champion on it (validate stage)")
    watch.add_argument("--output-root", type=Path, help="where results land (default: outputs/ of the project)")
    watch.add_argument("--trust-champion", action="store_true",
                       help="judge the champion even if it was moved outside Signoff (its ledger does not record it)")
    _execution(watch)
    watch.set_defaults(command=_monitor)

    again = commands.add_parser(
        "rerun",
        help="execute an archived run again and compare its evidence",
        description="Execute the notebooks, params and templates archived in RUN_DIR into a new run of the same "
        "model (compared with the same champion version, never registered), then compare the evidence name by "
        "name. Exit 0 reproduced, 1 some evidence differs beyond the tolerance, 2 could not run.",
    )
    _run_dir(again)
    again.add_argument("--tolerance", type=float, default=1e-9, metavar="REL",
                       help="allowed difference, relative to the larger value (at least 1) (default 1e-9)")
    _execution(again)
    _key(again, "sign the re-run with this SSH key")
    again.set_defaults(command=_rerun)

    approve = commands.add_parser(
        "approve",
        help="sign off a run: its model becomes the champion",
        description="Approve an archived run: register its model if needed and move alias champion to it. "
        "Refused (exit 2) for an ERROR run, for a BLOCKED run unless every failed gate is waivable and waived, "
        "and for the person who started the run (four-eyes rule).",
    )
    _run_dir(approve)
    _decider(approve, note_required=False)
    approve.add_argument(
        "--waive",
        action="append",
        default=[],
        metavar="GATE_ID",
        help="waive a failed gate marked waivable: true (repeatable; each needs --reason and --expires)",
    )
    approve.add_argument("--reason", action="append", default=[], metavar="TEXT",
                         help="why the waived failure is accepted")
    approve.add_argument("--expires", action="append", default=[], metavar="YYYY-MM-DD", help="when the waiver ends")
    approve.set_defaults(command=_approve)

    reject = commands.add_parser("reject", help="record a refusal of a run",
                                 description="Record that a run's model is refused; champion does not move.")
    _run_dir(reject)
    _decider(reject, note_required=True)
    reject.set_defaults(command=_reject)

    promote = commands.add_parser("promote", help="make an approved version the champion",
                                  description="Move alias champion to a version that was approved before.")
    promote.add_argument("model", metavar="MODEL")
    promote.add_argument("version", metavar="VERSION")
    _decider(promote, note_required=False)
    _store(promote, tracking=False)
    promote.set_defaults(command=_promote)

    rollback = commands.add_parser("rollback", help="return champion to the previous champion",
                                   description="Move alias champion back to the version that was champion before "
                                   "the current one, or to a named former champion (--to).")
    rollback.add_argument("model", metavar="MODEL")
    rollback.add_argument("--to", metavar="VERSION", help="a former champion (default: the one before the current)")
    _decider(rollback, note_required=True)
    _store(rollback, tracking=False)
    rollback.set_defaults(command=_rollback)

    listing = commands.add_parser("list", help="show a model's versions, verdicts, aliases and decisions",
                                  description="List every registered version of MODEL with its run, verdict, "
                                  "aliases, last decision and waivers; exit 1 if the champion has an expired waiver.")
    listing.add_argument("model", metavar="MODEL")
    _store(listing, tracking=True)
    listing.set_defaults(command=_list)

    show = commands.add_parser(
        "params",
        help="show the resolved parameters and what each stage notebook receives",
        description="Resolve a params file (extends, -p overrides, defaults), check it against every stage "
        "notebook's parameters cell, and print the result. Runs nothing. Exit 0 valid, 2 not.",
    )
    _common(show)
    show.set_defaults(command=_params)

    shipped = commands.add_parser(
        "check-model",
        help="check that a model's files are those of its latest (signed) champion decision",
        description="Hash the files of MODEL_URI (models:/NAME@ALIAS, models:/NAME/VERSION) or of a local model "
        "folder a deployment is about to serve, and compare them with the latest approval, promotion or "
        "rollback in the model's ledger (its signature checked where the policy requires one). Exit 0 the "
        "files that were signed off, 1 not, 2 could not check.",
    )
    shipped.add_argument("target", metavar="MODEL_URI_OR_FOLDER")
    shipped.add_argument("--model", metavar="NAME", help="the registered model a local folder should be (its ledger)")
    _store(shipped, tracking=True)
    shipped.set_defaults(command=_check_model)

    bundle_cmd = commands.add_parser(
        "export",
        help="write one run as an audit bundle that verifies without Signoff",
        description="Write RUN_DIR, its decisions and signatures, the model's ledger up to the run, the "
        "allowed-signers file in force, the model card, the evidence map, AUDIT.md and a standard-library "
        "checker (verify_bundle.py) into a new zip. Refused (exit 2) for a run that does not verify.",
    )
    _run_dir(bundle_cmd)
    bundle_cmd.add_argument("--to", type=Path, required=True, metavar="FILE.zip", help="the bundle to write (new)")
    bundle_cmd.set_defaults(command=_export)

    check = commands.add_parser(
        "verify",
        help="check that archived runs were not altered",
        description="Recompute the sha256 of every file of every run under PATH (a run folder, a model folder "
        "or the output root) and check each model's chain of manifests. Exit 0 intact, 1 not (each modified, "
        "missing or added file and each broken link is listed), 2 nothing to check.",
    )
    check.add_argument("path", type=Path, nargs="?", default=None, metavar="PATH",
                       help="what to check (default: outputs/ of the project)")
    check.add_argument("--tracking-uri", metavar="URI",
                       help="MLflow store holding each ledger's anchor (default: MLFLOW_TRACKING_URI, else the "
                       "embedded store under the output root if there is one)")
    check.add_argument("--expect-head", metavar="HASH", help="the ledger head noted at the last audit")
    check.set_defaults(command=_verify)
    return parser


def _run_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="an archived run folder")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("params_file", type=Path, metavar="PARAMS", help="a params file, e.g. params/credit.yaml")
    parser.add_argument("-p", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a dotted key, value parsed as YAML (repeatable): -p stages.train.max_iter=50")
    parser.add_argument("--notebooks", type=Path, help="stage notebooks folder (default: notebooks/ of the project)")


def _execution(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=_jobs, default=os.cpu_count() or 1,
                        help="stages run at once (default: number of cores)")
    parser.add_argument("--by", metavar="NAME",
                        help="who starts the run, recorded for the four-eyes rule (default: the OS user)")
    _wait(parser)


def _jobs(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a number of stages >= 1, got {text!r}")
    return int(text)


def _wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", type=float, default=600, metavar="SECONDS",
                        help="how long to wait for another command holding the model's lock (default 600)")


def _key(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--key", type=Path, default=os.environ.get("SIGNOFF_KEY") or None, metavar="KEY",
                        help=f"{what}: an SSH private key, or the .pub of a key in ssh-agent (default: SIGNOFF_KEY)")


def _decider(parser: argparse.ArgumentParser, note_required: bool) -> None:
    parser.add_argument("--by", metavar="NAME",
                        help="who decides (recorded); with --key, the key's principal (a --by that differs is refused)")
    _key(parser, "sign the decision with this SSH key")
    parser.add_argument("--note", required=note_required, default="", metavar="TEXT", help="why (recorded)")
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else the one in the run's params, "
                        "else the embedded store under the output root)")
    _wait(parser)


def _store(parser: argparse.ArgumentParser, tracking: bool) -> None:
    """Where a model's versions and runs are, for the commands that name a model rather than a run."""
    if tracking:
        parser.add_argument("--tracking-uri", metavar="URI",
                            help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else the embedded store)")
    parser.add_argument("--output-root", type=Path, help="where runs are archived (default: outputs/ of the project)")


def _layout(args: argparse.Namespace) -> pipeline.Layout:
    return api.layout_for(args.params_file, args.notebooks, getattr(args, "output_root", None))


def _run(args: argparse.Namespace) -> int:
    result = api.signoff(args.params_file, args.overrides, output_root=args.output_root, notebooks=args.notebooks,
                         jobs=args.jobs, by=args.by, key=args.key, wait=args.wait)
    _print_outcome(result.folder, records.ArchivedRun(result.folder).verdict, result.release)
    return result.exit_code


def _progress() -> Progress:
    from runner.run.progress import Progress

    return Progress(redact=redact.from_environment().text)


def _print_outcome(folder: Path, verdict: records.Verdict, release: str) -> None:
    _print_verdict(verdict)
    print(f"run folder: {folder}")
    print(f"report:     {folder / 'html' / 'report.html'}")
    print(f"registry:   {release}")


def _monitor(args: argparse.Namespace) -> int:
    from runner.run import monitor

    with stopping.handled():
        outcome = monitor.monitor(args.params_file, args.overrides, args.current, args.labels, _layout(args),
                                  args.jobs, _progress(), args.by, args.wait, args.trust_champion)
    _print_verdict(outcome.verdict)
    for gate in outcome.verdict.extra.get("not_evaluated", []):
        print(f"not evaluated: {gate['id']} ({gate['metric']}): {gate['why']}")
    health = {0: "HEALTHY", 1: "ALERT: a blocking monitor gate failed"}.get(outcome.exit_code, "could not judge")
    print(f"monitor:        {health}")
    print(f"monitor folder: {outcome.folder}")
    print(f"report:         {outcome.folder / 'html' / 'report.html'}")
    print(f"registry:       {outcome.release}")
    return outcome.exit_code


def _rerun(args: argparse.Namespace) -> int:
    from runner.run import rerun

    with stopping.handled():
        outcome, comparison = rerun.rerun(args.run_dir, args.jobs, _progress(), args.by, args.wait, args.tolerance,
                                          args.key)
    _print_outcome(outcome.folder, outcome.verdict, outcome.release)
    print(
        f"\nre-run of {args.run_dir.resolve().name}: {comparison.compared} evidence values compared "
        f"(tolerance {args.tolerance:g}); not compared, as they vary by nature: "
        f"{', '.join(comparison.volatile) or 'none'}"
    )
    for difference in comparison.differences:
        print(f"  DIFFERS {difference}")
    if comparison.differences:
        print(f"NOT REPRODUCED: {len(comparison.differences)} differences")
        return 1
    print("reproduced: every evidence value agrees")
    return 0


def _model_registry(args: argparse.Namespace) -> decisions.RegisteredModel:
    return api.model_registry(args.model, args.output_root, getattr(args, "tracking_uri", None))


def _approve(args: argparse.Namespace) -> int:
    if not len(args.waive) == len(args.reason) == len(args.expires):
        raise SignoffError("each --waive GATE_ID needs its own --reason TEXT and --expires YYYY-MM-DD")
    waivers = [decisions.Waiver(g, r, e) for g, r, e in zip(args.waive, args.reason, args.expires)]
    print(api.approve(args.run_dir, by=args.by, key=args.key, note=args.note, waivers=waivers,
                      tracking_uri=args.tracking_uri, wait=args.wait))
    return 0


def _reject(args: argparse.Namespace) -> int:
    print(api.reject(args.run_dir, note=args.note, by=args.by, key=args.key, tracking_uri=args.tracking_uri,
                     wait=args.wait))
    return 0


def _promote(args: argparse.Namespace) -> int:
    print(api.promote(args.model, args.version, note=args.note, by=args.by, key=args.key,
                      output_root=args.output_root, tracking_uri=args.tracking_uri, wait=args.wait))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    print(api.rollback(args.model, note=args.note, to=args.to, by=args.by, key=args.key,
                       output_root=args.output_root, tracking_uri=args.tracking_uri, wait=args.wait))
    return 0


def _list(args: argparse.Namespace) -> int:
    reg = _model_registry(args)
    rows = decisions.listing(reg)
    if not rows:
        uri = args.tracking_uri or mlflow_registry.tracking_uri({}, reg.output_root)
        print(f"model {args.model}: no registered versions in {redact.redact_uri(uri)} (runs archived under "
              f"{reg.output_root}); --tracking-uri, MLFLOW_TRACKING_URI or --output-root look elsewhere")
        return 0
    table = [("version", "aliases", "verdict", "decision", "by", "waivers", "run")]
    for row in rows:
        waivers = ", ".join(
            w["gate"] + (" (EXPIRED)" if w["gate"] in row["expired_waivers"] else f" until {w['expires']}")
            for w in row["waivers"]
        )
        table.append((row["version"], ",".join(row["aliases"]) or "-", row["verdict"], row["decision"] or "-",
                      row["decided_by"] or "-", waivers or "-", row["run"]))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    expired = [r for r in rows if "champion" in r["aliases"] and r["expired_waivers"]]
    if expired:
        print(f"WARNING: the champion (version {expired[0]['version']}) runs on expired waivers: "
              f"{', '.join(expired[0]['expired_waivers'])}")
    moved = verify.check_champion(reg.model_dir, mlflow_registry.kept(reg.client))
    for problem in moved:
        print(f"WARNING: {problem}")
    return 1 if expired or moved else 0


def _export(args: argparse.Namespace) -> int:
    names = bundle.export(args.run_dir.resolve(), args.to)
    print(f"wrote {args.to}: {len(names)} files; check it anywhere with: unzip it, then python3 {bundle.CHECKER}")
    return 0


def _check_model(args: argparse.Namespace) -> int:
    reg = _model_registry(args)
    same, said = shipped.check_model(args.target, args.model, reg.output_root, reg.connect)
    print(("OK: " if same else "MISMATCH: ") + said)
    return 0 if same else 1


def _print_verdict(verdict: records.Verdict) -> None:
    rows = [("gate", "metric", "observed", "interval", "threshold", "severity", "status")]
    for g in verdict.gates:
        observed = g.get("estimate", g["observed"])  # a champion gate judged on its paired change shows the change
        rows.append((
            g["id"], g["metric"],
            records.shown(observed),
            records.interval_text(g),
            " ".join(f"{k} {v:g}" for k, v in g["threshold"].items()),
            g["severity"], g["status"].upper(),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print()
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    for g in verdict.gates:
        if g["status"] == "inconclusive":
            print(f"{g['id']} inconclusive: {g['message']}")
    for stage in verdict.stages:
        if stage["status"] != "passed":
            print(f"stage {stage['name']} {stage['status']}: {stage['error']}")
    print(f"\nverdict: {records.why(verdict.to_json())}")


def _params(args: argparse.Namespace) -> int:
    from runner.run import pipeline

    params, found, stage_params = pipeline.prepare(args.params_file, args.overrides, _layout(args))
    print(config.dump_params(params), end="")
    print("# what each stage notebook receives (run_dir becomes the run folder):")
    print(config.dump_params({s.name: stage_params[s.name] for s in found}), end="")
    return 0


def _verify(args: argparse.Namespace) -> int:
    path = args.path or workspace.project_root() / "outputs"
    if path.is_dir() and not (path / "manifest.json").exists():
        for folder in verify.unfinished(path):
            print(f"note: {folder}: unfinished run (still being written, or its process was killed); not archived")
        for note in verify.stale_lock_holders(path):
            print(f"note: {note}")
    problems, runs = verify.verify(path, api.kept_for(path, args.tracking_uri), args.expect_head)
    for line in verify.signers(path):
        print(line)
    for problem in problems:
        print(problem)
    if problems:
        print(f"NOT INTACT: {len(problems)} problems in {runs} runs under {path}")
        return 1
    print(f"intact: {runs} runs under {path}, every file matches its manifest, every chain link holds")
    return 0
