"""Do the gates' intervals mean what they say?  Coverage, false blocks and power, by simulation.

Each replicate draws the example's synthetic credit data (``--rows`` rows, a new seed), fits the
example's model and threshold as the train stage does, and judges the example's blocking gates on
intervals (``params/credit.yaml``: the ROC AUC, disparate impact and equal opportunity between sexes)
from the test split with the stages' bootstrap intervals.  The model's true figures are measured on
``--truth-rows`` fresh rows from the same generator.  Printed per bias setting and gate: how often the
interval holds the true value (coverage, goal: within 2 points of the level), how often the gate
fails, is inconclusive or passes; then how often these gates would make the run BLOCKED (a fail, or an
undecided ``inconclusive: block`` gate): on unbiased data a false block (goal: at most 5%), on biased
data (``--biases 2``) the power (goal: at least 80%).  Coverage is not expected where the true figure
sits on its natural bound (a difference of 0, a ratio of 1: unbiased data): a max - min over groups is
never below 0, and its percentile interval then lies above the truth; that errs towards flagging,
never towards passing.

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

from sklearn.metrics import roc_auc_score  # noqa: E402

from runner import config, records  # noqa: E402
from runner.analysis import datasets, fairness, metrics, modeling, tasks  # noqa: E402
from runner.judge import gates  # noqa: E402

JUDGED = ("discrimination", "disparate-impact-sex", "equal-opportunity-sex")  # the example's blocking gates on
GATES = [g for g in config.load_params(ROOT / "params" / "credit.yaml")["gates"] if g["id"] in JUDGED]  # intervals


def replicate(seed: int, rows: int, bias: float, truth_rows: int, n_boot: int, level: float,
              model_type: str) -> list[tuple[float, tuple[float, float], dict]]:
    """Per gate: the true figure, the test split's interval and the checked gate, for one fresh data set."""
    frame, _ = datasets.synthetic_credit(rows, seed, bias=bias)
    features = [c for c in frame.columns if c not in ("default", "sex", "age_band")]
    split = modeling.split(frame["default"], 0.2, 0.2, seed).to_numpy()
    X, y = frame[features], frame["default"].to_numpy()
    model = modeling.build(model_type, X, seed, 200, 0.1)
    model.fit(X[split == "train"], y[split == "train"])
    valid = split == "valid"
    threshold = metrics.threshold_for_recall(y[valid], tasks.predictions(model, X[valid], "binary"), 0.8)
    test = split == "test"
    scores = tasks.predictions(model, X[test], "binary")
    found = {f"fairness.sex.{k}": v for k, v in fairness.disparities(
        y[test], scores, threshold, frame["sex"][test].astype(str), 30, n_boot, seed, level=level).items()}
    low, high = metrics.intervals("binary", y[test], scores, ["roc_auc"], n_boot, seed, level)["roc_auc"]
    found |= {"validate.roc_auc": roc_auc_score(y[test], scores), "validate.roc_auc_ci_low": low,
              "validate.roc_auc_ci_high": high}
    truth_frame, _ = datasets.synthetic_credit(truth_rows, 1_000_000 + seed, bias=bias)
    truth_scores = tasks.predictions(model, truth_frame[features], "binary")
    truth = {f"fairness.sex.{k}": v for k, v in fairness.disparities(
        truth_frame["default"].to_numpy(), truth_scores, threshold, truth_frame["sex"].astype(str), 30).items()}
    truth["validate.roc_auc"] = roc_auc_score(truth_frame["default"], truth_scores)
    judged = gates.evaluate(GATES, found, level=level)
    return [(truth[g["metric"]], (found[f"{g['metric']}_ci_low"], found[f"{g['metric']}_ci_high"]), j)
            for g, j in zip(GATES, judged)]


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
            outcomes = {o: np.mean([j["status"] == o for _, _, j in found]) for o in ("pass", "inconclusive", "fail")}
            width = np.median([high - low for _, (low, high), _ in found])
            print(f"bias {bias:g} {gate['id']}: true figure median {np.median(truths):.3f} (range "
                  f"{truths.min():.3f} to {truths.max():.3f}); coverage {covered:.1%}; median interval width "
                  f"{width:.3f}; " + ", ".join(f"{o} {share:.1%}" for o, share in outcomes.items()))
        blocked = np.mean([any(records.blocks(judged) for _, _, judged in run) for run in runs])
        print(f"bias {bias:g}: BLOCKED by these gates in {blocked:.1%} of runs  ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
