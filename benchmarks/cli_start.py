"""How fast the command answers before it does anything: `signoff --help` and each `signoff COMMAND --help`
(goal: under 0.5 s each; heavy imports belong to the commands that need them).

    python benchmarks/cli_start.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time

GOAL = 0.5


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "runner", *args], capture_output=True, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    listed = subprocess.run([sys.executable, "-m", "runner", "--help"], capture_output=True, text=True).stdout
    commands = re.findall(r"^    (\w[\w-]*)\s", listed.split("commands:", 1)[-1], re.MULTILINE)
    worst = 0.0
    for invocation in [["--help"], *([command, "--help"] for command in commands)]:
        median = statistics.median(timed(invocation) for _ in range(args.repeat))
        worst = max(worst, median)
        print(f"signoff {' '.join(invocation):<22} {median:.3f} s")
    print(f"slowest {worst:.3f} s (goal < {GOAL} s): {'met' if worst < GOAL else 'MISSED'}")


if __name__ == "__main__":
    main()
