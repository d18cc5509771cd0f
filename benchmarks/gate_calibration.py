"""Do the fairness gates' intervals mean what they say?  Coverage, false blocks and power, by simulation.

Each replicate draws the example's synthetic credit data (``--rows`` rows, a new seed), fits the example's
model and threshold as the train stage does, and judges the example's two gates on sex (disparate impact
``min 0.8``, equal opportunity ``max 0.1``) from the test split with the fairness stage's bootstrap
intervals.  The model's true figures are measured on ``--truth-rows`` fresh rows from the same generator.
Printed per bias setting and gate: how often the interval holds the true value (coverage, goal: within 2
points of the level), how often the gate fails, is inconclusive or passes; then how often the run would be
BLOCKED by either gate: on unbiased data a false block (goal: at most 5%), on biased data (``--biases 2``)
the power (goal: at least 80%).  Coverage is not expected where the true figure sits on its natural bound
(a difference of 0, a ratio of 1: unbiased data): a max - min over groups is never below 0, and its
percentile interval then lies above the truth; that errs towards flagging, never towards passing.

    python benchmarks/gate_calibration.py [--rows 3000] [--replicates 200] [--biases 0 2] [--level 0.95]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.analysis import datasets, fairness, metrics, modeling, tasks  # noqa: E402
from runner.judge import gates  # noqa: E402

GATES = [{"id": "disparate-impact-sex", "metric": "fairness.sex.disparate_impact_ratio", "min": 0.8},
         {"id": "equal-opportunity-sex", "metric": "fairness.sex.equal_opportunity_difference", "max": 0.1}]


def replicate(seed: int, rows: int, bias: float, truth_rows: int, n_boot: int, level: float,
              model_type: str) -> list[tuple[float, tuple[float, float], str]]:
    """Per gate: the true figure, the test split's interval and the gate's outcome, for one fresh data set."""
    frame, _ = datasets.synthetic_credit(rows, seed, bias=bias)
    features = [c for c in frame.columns if c not in ("default", "sex", "age_band")]
    split = modeling.split(frame["default"], 0.2, 0.2, seed).to_numpy()
    X, y = frame[features], frame["default"].to_numpy()
    model = modeling.build(model_type, X, seed, 200, 0.1)
    model.fit(X[split == "train"], y[split == "train"])
    valid = split == "valid"
    threshold = metrics.threshold_for_recall(y[valid], tasks.predictions(model, X[valid], "binary"), 0.8)
    test = split == "test"
    found = fairness.disparities(y[test], tasks.predictions(model, X[test], "binary"), threshold,
                                 frame["sex"][test].astype(str), 30, n_boot, seed, level=level)
    truth_frame, _ = datasets.synthetic_credit(truth_rows, 1_000_000 + seed, bias=bias)
    truth = fairness.disparities(truth_frame["default"].to_numpy(),
                                 tasks.predictions(model, truth_frame[features], "binary"), threshold,
                                 truth_frame["sex"].astype(str), 30)
    judged = gates.evaluate(GATES, {f"fairness.sex.{k}": v for k, v in found.items()}, level=level)
    figures = [gate["metric"].rsplit(".", 1)[1] for gate in GATES]
    return [(truth[f], (found[f"{f}_ci_low"], found[f"{f}_ci_high"]), j["status"]) for f, j in zip(figures, judged)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--biases", type=float, nargs="+", default=[0.0, 2.0])
    parser.add_argument("--level", type=float, default=0.95)
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--truth-rows", type=int, default=200_000)
    parser.add_argument("--model-type", default="hist_gradient_boosting")
    args = parser.parse_args()
    print(f"{args.replicates} replicates of {args.rows:,} rows, {args.model_type}, "
          f"{args.level:.0%} intervals from {args.n_boot} resamples")
    for bias in args.biases:
        start = time.perf_counter()
        runs = [replicate(seed, args.rows, bias, args.truth_rows, args.n_boot, args.level, args.model_type)
                for seed in range(args.replicates)]
        for index, gate in enumerate(GATES):
            found = [run[index] for run in runs]
            truths = np.array([t for t, _, _ in found])
            covered = np.mean([low <= t <= high for t, (low, high), _ in found])
            outcomes = {o: np.mean([s == o for _, _, s in found]) for o in ("pass", "inconclusive", "fail")}
            width = np.median([high - low for _, (low, high), _ in found])
            print(f"bias {bias:g} {gate['id']}: true figure median {np.median(truths):.3f} (range "
                  f"{truths.min():.3f} to {truths.max():.3f}); coverage {covered:.1%}; median interval width "
                  f"{width:.3f}; " + ", ".join(f"{o} {share:.1%}" for o, share in outcomes.items()))
        blocked = np.mean([any(status == "fail" for _, _, status in run) for run in runs])
        print(f"bias {bias:g}: BLOCKED by either gate in {blocked:.1%} of runs  ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
