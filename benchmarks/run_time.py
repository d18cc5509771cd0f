"""How long a data scientist waits: `signoff run` against the same stage code run two plainer ways.

signoff:   `signoff run PARAMS` (stages, evidence, gates, report, HTML, archive, registry).
papermill: the same stage notebooks with the same resolved parameters, one after another,
           each with `papermill IN OUT -f PARAMS.yaml` (goal: signoff at most 0.5x this).
plain:     the same stage code (each notebook's code cells, parameters injected by Papermill's
           own parameterize_notebook) executed in one plain Python process, no kernel, no
           notebook written (goal: signoff at most 1.5x this).
The three alternate round by round so that a machine's drift affects them alike.

    python benchmarks/run_time.py [params/credit.yaml] [--repeat 3] [-p KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.run import pipeline  # noqa: E402


def signoff_run(params: Path, overrides: list[str], out: Path) -> float:
    flags = [arg for o in overrides for arg in ("-p", o)]
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "runner", "run", str(params), *flags, "--output-root", str(out)],
                            cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 1):
        sys.exit(f"signoff run failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return elapsed


def papermill_sequence(stages: list, parameters: dict, work: Path) -> float:
    run_dir = work / "run"
    run_dir.mkdir(parents=True)
    files = []
    for stage in stages:
        values = {**parameters[stage.name], "run_dir": str(run_dir)}
        path = work / f"{stage.name}.yaml"
        path.write_text(yaml.safe_dump(values), encoding="utf-8")
        files.append((stage, path))
    start = time.perf_counter()
    for stage, path in files:
        subprocess.run([sys.executable, "-m", "papermill", str(stage.path), str(run_dir / f"{stage.name}.ipynb"),
                        "-f", str(path), "--no-progress-bar"], cwd=ROOT, capture_output=True, check=True)
    return time.perf_counter() - start


PLAIN = """
import json, sys
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

for path, values in json.loads(sys.argv[1]):
    nb = parameterize_notebook(load_notebook_node(path), values)
    code = "\\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    exec(compile(code, path, "exec"), {"__name__": "__main__"})
"""


def plain_process(stages: list, parameters: dict, work: Path) -> float:
    run_dir = work / "run"
    run_dir.mkdir(parents=True)
    plan = json.dumps([[str(stage.path), {**parameters[stage.name], "run_dir": str(run_dir)}] for stage in stages])
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", PLAIN, plan], cwd=ROOT, capture_output=True, check=True,
                   env={**os.environ, "MPLBACKEND": "Agg"})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("params", nargs="?", type=Path, default=ROOT / "params" / "credit.yaml")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("-p", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    layout = pipeline.Layout(ROOT / "notebooks", ROOT / "templates", ROOT / "outputs")
    _, stages, parameters = pipeline.prepare(args.params, args.overrides, layout)
    timings: dict[str, list[float]] = {"signoff": [], "papermill": [], "plain": []}
    with tempfile.TemporaryDirectory(prefix="signoff-bench-") as tmp:
        for i in range(args.repeat):
            timings["signoff"].append(signoff_run(args.params, args.overrides, Path(tmp) / f"out-{i}"))
            timings["papermill"].append(papermill_sequence(stages, parameters, Path(tmp) / f"pm-{i}"))
            timings["plain"].append(plain_process(stages, parameters, Path(tmp) / f"plain-{i}"))
            print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in timings.items()), flush=True)
    median = {name: statistics.median(values) for name, values in timings.items()}
    print(f"signoff run median:           {median['signoff']:.1f} s")
    print(
        f"papermill CLI median:         {median['papermill']:.1f} s   "
        f"ratio {median['signoff'] / median['papermill']:.2f} (goal <= 0.5)"
    )
    print(f"one plain Python process:     {median['plain']:.1f} s   ratio {median['signoff'] / median['plain']:.2f}"
          " (goal <= 1.5)")


if __name__ == "__main__":
    main()
