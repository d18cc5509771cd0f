"""Do the gates' intervals mean what they say?  Coverage, false blocks and power, by simulation.

Each replicate draws the example's synthetic credit data (each ``--rows`` size, a new seed, and a current
sample moved by ``--drift``), fits the example's model and threshold as the train stage does (and a random
forest as the champion it is compared with), and computes, from the test split with the stages' own helpers,
one figure of each family a gate may judge on its interval: validation (ROC and PR AUC), fairness between
sexes (disparate impact, equal opportunity, statistical parity), the paired change against the champion (ROC
AUC), drift (the prediction K-S distance between training and current scores). The true figures are measured
on one sample of ``--truth-rows`` rows from the same generator (the population), scored by each replicate's
models. Printed per size, bias and family: how often the interval holds the true value (coverage, goal: within
2 points of the level), with the Monte Carlo interval of that share (100 replicates cannot tell 93% from 97%:
use 400 or more to test the goal); per gate of the example that blocks on an interval (``params/credit.yaml``:
the ROC AUC, disparate impact and equal opportunity between sexes) how often it fails, is inconclusive or
passes; then how often these gates make the run BLOCKED (a fail, or an undecided ``inconclusive: block``
gate): on unbiased data a false block (goal: at most 5%), on biased data (``--biases 2``) the power (goal: at
least 80%). The true figures of a fair
model sit on their natural bound (a difference of 0, a ratio of 1: unbiased data); the fairness intervals fold
signed group differences at 0 so that they hold it too. The K-S distance's interval is exact with no drift
(``--drift 0``: its lower end is the K-S test) and corrects the observed distance's overshoot once the samples
differ (``drift.prediction_shift``).

    python benchmarks/gate_calibration.py [--rows 3000 10000 100000] [--replicates 40] [--biases 0 2] [--first-seed 0]
                                          [--drift 0.5] [--jobs 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from runner import config, records  # noqa: E402
from runner.analysis import comparison, datasets, drift, fairness, metrics, modeling, tasks  # noqa: E402
from runner.judge import gates  # noqa: E402

JUDGED = ("discrimination", "disparate-impact-sex", "equal-opportunity-sex")  # the example's blocking gates on
GATES = [g for g in config.load_params(ROOT / "params" / "credit.yaml")["gates"] if g["id"] in JUDGED]  # intervals
FAMILIES = {
    "validation": ("validate.roc_auc", "validate.pr_auc"),
    "fairness": ("fairness.sex.disparate_impact_ratio", "fairness.sex.equal_opportunity_difference",
                 "fairness.sex.statistical_parity_difference"),
    "champion delta": ("validate.roc_auc_delta_vs_champion",),
    "drift": ("drift.prediction_ks",),
}


def figures(y: np.ndarray, scores: np.ndarray, champion: np.ndarray, threshold: float, sex, shift: tuple,
            n_boot: int, seed: int, level: float) -> dict[str, float]:
    """Every figure of :data:`FAMILIES`, with its interval where ``n_boot`` asks for one, as the stages glue them."""
    found = {f"fairness.sex.{k}": v for k, v in fairness.disparities(
        y, scores, threshold, sex.astype(str), 30, n_boot, seed, level=level).items()}
    statistics = metrics.statistics("binary", y, 2)
    found |= {f"validate.{name}": statistics[name](y, scores) for name in ("roc_auc", "pr_auc")}
    delta = statistics["roc_auc"](y, scores) - statistics["roc_auc"](y, champion)
    found["validate.roc_auc_delta_vs_champion"] = delta
    found |= {f"drift.{k}": v for k, v in drift.prediction_shift(*shift, level, n_boot, seed).items()}
    if n_boot:
        for name, (low, high) in metrics.intervals("binary", y, scores, ["roc_auc", "pr_auc"], n_boot, seed,
                                                   level).items():
            found[f"validate.{name}_ci_low"], found[f"validate.{name}_ci_high"] = low, high
        _, low, high = comparison.paired_delta("binary", y, scores, champion, "roc_auc", n_boot, seed, 2, level)
        found["validate.roc_auc_delta_vs_champion_ci_low"] = low
        found["validate.roc_auc_delta_vs_champion_ci_high"] = high
    return found


def replicate(seed: int, rows: int, bias: float, drift_size: float, truth: tuple, n_boot: int, level: float,
              model_type: str) -> tuple[dict[str, float], dict[str, float], list[dict]]:
    """The test split's figures and intervals, the true figures (on the ``truth`` population sample, the same
    for every replicate), and the example's judged gates, for one data set."""
    frame, current = datasets.synthetic_credit(rows, seed, bias=bias, drift=drift_size)
    features = [c for c in frame.columns if c not in ("default", "sex", "age_band")]
    split = modeling.split(frame["default"], 0.2, 0.2, seed).to_numpy()
    X, y = frame[features], frame["default"].to_numpy()
    train = split == "train"
    model = modeling.build(model_type, X, seed, 200, 0.1).fit(X[train], y[train])
    champion = modeling.build("random_forest", X, seed, 100, 0.1).fit(X[train], y[train])
    valid = split == "valid"
    threshold = metrics.threshold_for_recall(y[valid], tasks.predictions(model, X[valid], "binary"), 0.8)

    test = split == "test"
    shift = (tasks.predictions(model, X[train], "binary"), tasks.predictions(model, current[features], "binary"))
    found = figures(y[test], tasks.predictions(model, X[test], "binary"),
                    tasks.predictions(champion, X[test], "binary"), threshold, frame["sex"][test], shift, n_boot,
                    seed, level)
    truth_frame, truth_current = truth
    truth_scores = tasks.predictions(model, truth_frame[features], "binary")
    true = population(truth_frame["default"].to_numpy(), truth_scores,
                      tasks.predictions(champion, truth_frame[features], "binary"), threshold,
                      truth_frame["sex"].to_numpy())
    true["drift.prediction_ks"] = drift.prediction_ks(truth_scores,
                                                      tasks.predictions(model, truth_current[features], "binary"))
    return found, true, gates.evaluate(GATES, found, level=level)


def population(y: np.ndarray, scores: np.ndarray, champion: np.ndarray, threshold: float,
               sex: np.ndarray) -> dict[str, float]:
    """The true figures on the population sample, computed here by counting (not by the stages' helpers, so the
    truth shares no code with what it checks; and fast on a million rows)."""
    statistics = metrics.statistics("binary", y, 2)
    decided = scores >= threshold
    groups = [sex == value for value in np.unique(sex)]
    selection = [decided[rows].mean() for rows in groups]
    caught = [decided[rows & (y == 1)].mean() for rows in groups]
    return {"validate.roc_auc": statistics["roc_auc"](y, scores), "validate.pr_auc": statistics["pr_auc"](y, scores),
            "validate.roc_auc_delta_vs_champion": statistics["roc_auc"](y, scores) - statistics["roc_auc"](y, champion),
            "fairness.sex.disparate_impact_ratio": min(selection) / max(selection),
            "fairness.sex.statistical_parity_difference": max(selection) - min(selection),
            "fairness.sex.equal_opportunity_difference": max(caught) - min(caught)}


def wilson(hits: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Monte Carlo error of a measured coverage: 100 replicates cannot tell 93% from 97%, so every coverage
    is printed with the 95% Wilson interval of its replicates' share."""
    share = hits / n
    centre, half = share + z * z / (2 * n), z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[3000, 10000, 100000])
    parser.add_argument("--replicates", type=int, default=40)
    parser.add_argument("--biases", type=float, nargs="+", default=[0.0, 2.0])
    parser.add_argument("--drift", type=float, default=0.5, help="how far the current sample moved (generator's knob)")
    parser.add_argument("--level", type=float, default=0.95)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--truth-rows", type=int, default=1_000_000,
                        help="rows of the population sample the true figures come from (drawn once per bias)")
    parser.add_argument("--first-seed", type=int, default=0, help="replicates use seeds from this one on")
    parser.add_argument("--model-type", default="hist_gradient_boosting")
    parser.add_argument("--jobs", type=int, default=1, help="replicates computed side by side, one process each")
    args = parser.parse_args()
    print(f"{args.replicates} replicates per size and bias, {args.model_type}, {args.level:.0%} intervals from "
          f"{args.n_boot} resamples, seeds {args.first_seed} on; truth from one sample of {args.truth_rows:,} rows")
    seeds = range(args.first_seed, args.first_seed + args.replicates)
    for bias in args.biases:
        truth = datasets.synthetic_credit(args.truth_rows, 1_000_000, bias=bias, drift=args.drift)
        for rows in args.rows:
            start = time.perf_counter()
            one = partial(replicate, rows=rows, bias=bias, drift_size=args.drift, truth=truth, n_boot=args.n_boot,
                          level=args.level, model_type=args.model_type)
            with multiprocessing.get_context("fork").Pool(args.jobs) as pool:  # forked: the population is shared
                runs = pool.map(one, seeds, chunksize=1)
            for family, names in FAMILIES.items():
                held = {name: [f[f"{name}_ci_low"] <= t[name] <= f[f"{name}_ci_high"] for f, t, _ in runs]
                        for name in names}
                share = np.mean([np.mean(h) for h in held.values()])
                low, high = wilson(share * len(runs), len(runs))  # a replicate's figures are not independent
                around = {name: np.median([t[name] for _, t, _ in runs]) for name in names}
                print(f"{rows:>7,} rows, bias {bias:g}, {family}: coverage {share:.1%} "
                      f"(Monte Carlo 95%: {low:.1%}-{high:.1%}; "
                      + ", ".join(f"{name.split('.')[-1]} {np.mean(h):.1%}, true value near {around[name]:.3f}"
                                  for name, h in held.items()) + ")")
            for index, gate in enumerate(GATES):
                outcomes = {o: np.mean([judged[index]["status"] == o for _, _, judged in runs])
                            for o in ("pass", "inconclusive", "fail")}
                print(f"{rows:>7,} rows, bias {bias:g}, gate {gate['id']}: "
                      + ", ".join(f"{o} {share:.1%}" for o, share in outcomes.items()))
            blocked = np.mean([any(records.blocks(g) for g in judged) for _, _, judged in runs])
            print(f"{rows:>7,} rows, bias {bias:g}: BLOCKED by these gates in {blocked:.1%} of runs "
                  f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
