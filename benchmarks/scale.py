"""Large data: the full pipeline on 1,000,000 training rows and a current sample of 200,000.

Writes the synthetic data as Parquet files (so the real-data path is what is measured),
runs `signoff run params/credit.yaml` on them into a temporary output root while sampling
the memory of the whole process tree, and reports per stage: wall time, the kernel's
peak memory, and the size of what the stage left in the run folder; then the run's peak
memory and folder size against the goals (peak under 6 GiB, folder under 50 MB).

    python benchmarks/scale.py [--rows 1000000] [--current 200000] [-p KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.analysis import datasets  # noqa: E402

PEAK_GOAL_GIB = 6
FOLDER_GOAL_MB = 50


def write_data(rows: int, current_rows: int, seed: int, folder: Path) -> tuple[Path, Path]:
    reference, current = datasets.synthetic_credit(rows, seed)
    train_file, current_file = folder / "train.parquet", folder / "current.parquet"
    reference.to_parquet(train_file)
    current.sample(min(current_rows, len(current)), random_state=seed).to_parquet(current_file)
    return train_file, current_file


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_sampled(command: list[str]) -> tuple[subprocess.CompletedProcess, float, int]:
    """Run ``command``; its wall time and the peak resident memory of its process tree."""
    peak = 0
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watched = psutil.Process(child.pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(watched))
            done.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = child.communicate()
    done.set()
    sampler.join()
    return subprocess.CompletedProcess(command, child.returncode, stdout, stderr), time.perf_counter() - start, peak


def folder_mb(paths: list[Path]) -> float:
    return sum(p.stat().st_size for path in paths if path.exists()
               for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--current", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("-p", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="signoff-scale-") as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        train_file, current_file = write_data(args.rows, args.current, args.seed, tmp)
        print(f"data: {args.rows:,} training rows, {args.current:,} current rows written in "
              f"{time.perf_counter() - started:.1f} s ({folder_mb([train_file, current_file]):.1f} MB of Parquet)")
        flags = [arg for o in [f"data.path={train_file}", f"data.current_path={current_file}", *args.overrides]
                 for arg in ("-p", o)]
        result, seconds, peak = run_sampled([sys.executable, "-m", "runner", "run", "params/credit.yaml", *flags,
                                             "--output-root", str(tmp / "outputs")])
        if result.returncode not in (0, 1):
            sys.exit(
                f"signoff run could not run ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        run = next(p for p in (tmp / "outputs" / "credit-default").iterdir() if (p / "manifest.json").exists())
        verdict = json.loads((run / "verdict.json").read_text(encoding="utf-8"))
        print(f"\n{'stage':<10} {'status':<8} {'seconds':>8} {'peak MB':>8} {'folder MB':>9}")
        for stage in verdict["stages"]:
            left = [run / "notebooks" / f"{stage['name']}.ipynb", run / "html" / f"{stage['name']}.html"]
            if stage["name"] == "report":
                left = [run / "report.ipynb", run / "html" / "report.html"]
            peak_mb = stage.get("peak_memory_mb")
            print(f"{stage['name']:<10} {stage['status']:<8} {stage['seconds']:>8.1f} "
                  f"{peak_mb if peak_mb is not None else float('nan'):>8.0f} {folder_mb(left):>9.2f}")
        size = folder_mb([run])
        print(f"\nverdict {verdict['verdict']}; wall time {seconds:.1f} s")
        print(f"peak memory of the whole run (all processes): {peak / 2**30:.2f} GiB (goal < {PEAK_GOAL_GIB} GiB): "
              f"{'met' if peak < PEAK_GOAL_GIB * 2**30 else 'MISSED'}")
        print(f"run folder: {size:.1f} MB (goal < {FOLDER_GOAL_MB} MB): {'met' if size < FOLDER_GOAL_MB else 'MISSED'}")
        largest = sorted(((p.stat().st_size, p) for p in run.rglob("*") if p.is_file()), reverse=True)[:5]
        print("largest files: " + ", ".join(f"{p.relative_to(run)} {s / 1e6:.1f} MB" for s, p in largest))


if __name__ == "__main__":
    main()
