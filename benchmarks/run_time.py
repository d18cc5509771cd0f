"""How long a data scientist waits: `signoff run` against the same stage code run two plainer ways.

signoff:   `signoff run PARAMS` (stages, evidence, gates, report, HTML, archive, registry).
papermill: the same stage notebooks with the same resolved parameters, one after another,
           each with `papermill IN OUT -f PARAMS.yaml` (goal: signoff at most 0.3x this).
plain:     the same stage code (each notebook's code cells, parameters injected by Papermill's
           own parameterize_notebook) executed in one plain Python process, no kernel, no
           notebook written (goal: signoff at most 0.8x this).
The three alternate round by round so that a machine's drift affects them alike.  Beside the totals,
where the time went: for `signoff run`, each phase from the moment its line appears on the terminal
to the next phase's line (startup, preparing the data, the stages' wall time, evidence and gates,
the report, the model card, sealing, rendering, MLflow logging, the registry, exit) and each stage's
own time (they overlap); for the other two, each stage's time.

    python benchmarks/run_time.py [params/credit.yaml] [--repeat 3] [-p KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.run import pipeline  # noqa: E402

LOG_LINE = re.compile(r"\S+ (?:INFO|WARNING|ERROR)\s+(\S+)\s+(.*)")
# (stage column, what the message says first): the phase that begins when such a line appears
PHASES = [
    ("signoff", "parameters and", "prepare data, open the run"),
    ("signoff", "run ", "stages (wall)"),
    ("signoff", "evidence gathered", "evidence and gates"),
    ("report", "started", "report"),
    ("report", "passed", "model card"),
    ("signoff", "verdict", "scrub, hash, seal"),
    ("signoff", "sealed", "render HTML"),
    ("signoff", "archived", "MLflow logging"),
    ("signoff", "logged to MLflow", "registry, index"),
]
STAGE_DONE = re.compile(r"(?:passed|failed) in ([\d.]+) s")


def signoff_run(params: Path, overrides: list[str], out: Path) -> tuple[float, dict[str, float]]:
    """The run's wall time, and each phase's and stage's, read off its lines as they arrive."""
    flags = [arg for o in overrides for arg in ("-p", o)]
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "runner", "run", str(params), *flags, "--output-root", str(out)],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    phases: dict[str, float] = defaultdict(float)
    phase, since, lines = "startup", start, []
    for line in process.stdout:
        now, lines = time.perf_counter(), [*lines, line]
        match = LOG_LINE.match(line)
        if match is None:  # the gate table: the run is over, the process ends
            begins = "exit" if phase != "exit" else None
        else:
            stage, text = match.groups()
            if (done := STAGE_DONE.match(text)) and stage != "report":
                phases[f"  stage {stage}"] = float(done.group(1))
            begins = next((name for column, prefix, name in PHASES if stage == column and prefix in text.split(";")[0]),
                          None)
        if begins:
            phases[phase] += now - since
            phase, since = begins, now
    process.wait()
    elapsed = time.perf_counter() - start
    phases[phase] += elapsed - (since - start)
    if process.returncode not in (0, 1):
        sys.exit(f"signoff run failed ({process.returncode}):\n{''.join(lines)}")
    return elapsed, phases


def papermill_sequence(stages: list, parameters: dict, work: Path) -> tuple[float, dict[str, float]]:
    run_dir = work / "run"
    run_dir.mkdir(parents=True)
    files = []
    for stage in stages:
        values = {**parameters[stage.name], "run_dir": str(run_dir)}
        path = work / f"{stage.name}.yaml"
        path.write_text(yaml.safe_dump(values), encoding="utf-8")
        files.append((stage, path))
    phases = {}
    start = time.perf_counter()
    for stage, path in files:
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "papermill", str(stage.path), str(run_dir / f"{stage.name}.ipynb"),
                        "-f", str(path), "--no-progress-bar"], cwd=ROOT, capture_output=True, check=True)
        phases[f"  stage {stage.name}"] = time.perf_counter() - began
    return time.perf_counter() - start, phases


PLAIN = """
import json, sys, time
began = time.perf_counter()
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

took = {"startup": time.perf_counter() - began}
for name, path, values in json.loads(sys.argv[1]):
    began = time.perf_counter()
    nb = parameterize_notebook(load_notebook_node(path), values)
    code = "\\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    exec(compile(code, path, "exec"), {"__name__": "__main__"})
    took[f"  stage {name}"] = time.perf_counter() - began
print(json.dumps(took), file=sys.stderr)
"""


def plain_process(stages: list, parameters: dict, work: Path) -> tuple[float, dict[str, float]]:
    run_dir = work / "run"
    run_dir.mkdir(parents=True)
    plan = json.dumps([[stage.name, str(stage.path), {**parameters[stage.name], "run_dir": str(run_dir)}]
                       for stage in stages])
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PLAIN, plan], cwd=ROOT, capture_output=True, check=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    return time.perf_counter() - start, json.loads(done.stderr.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("params", nargs="?", type=Path, default=ROOT / "params" / "credit.yaml")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("-p", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    layout = pipeline.Layout(ROOT / "notebooks", ROOT / "templates", ROOT / "outputs")
    _, stages, parameters = pipeline.prepare(args.params, args.overrides, layout)
    ways = {"signoff": lambda work: signoff_run(args.params, args.overrides, work),
            "papermill": lambda work: papermill_sequence(stages, parameters, work),
            "plain": lambda work: plain_process(stages, parameters, work)}
    totals: dict[str, list[float]] = defaultdict(list)
    phases: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with tempfile.TemporaryDirectory(prefix="signoff-bench-") as tmp:
        for i in range(args.repeat):
            for way, measure in ways.items():
                total, parts = measure(Path(tmp) / f"{way}-{i}")
                totals[way].append(total)
                for name, seconds in parts.items():
                    phases[name][way].append(seconds)
            print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in totals.items()), flush=True)
    median = {way: statistics.median(values) for way, values in totals.items()}
    print(f"\n{'median seconds':<28}" + "".join(f"{way:>10}" for way in ways))
    for name, by_way in phases.items():
        print(f"{name:<28}" + "".join(f"{statistics.median(by_way[way]):>10.2f}" if way in by_way else f"{'':>10}"
                                       for way in ways))
    print(f"{'total':<28}" + "".join(f"{median[way]:>10.2f}" for way in ways))
    print(f"\nsignoff run: {median['signoff']:.1f} s (goal <= 30 s); "
          f"{median['signoff'] / median['papermill']:.2f}x the papermill CLI (goal <= 0.3), "
          f"{median['signoff'] / median['plain']:.2f}x one plain process (goal <= 0.8)")


if __name__ == "__main__":
    main()
