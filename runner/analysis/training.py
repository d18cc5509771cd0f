"""The train stage's contract: what any training notebook (Signoff's own ``02_train`` or a data scientist's,
named by ``stages.train.notebook``) receives, and the one call that hands its model over.

:func:`prepare` gives the data with its task settled and Signoff's seeded train/validation/test split,
so that the later stages test the model on rows it never saw; :func:`hand_over` takes any fitted
scikit-learn-compatible estimator or pipeline that scores the raw feature columns, fits the baseline,
learns a binary model's decision threshold on the validation rows, stores what the later stages read,
and records the train stage's evidence.  Nothing else is asked of the notebook.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scrapbook as sb

from runner.analysis import datasets, metrics, modeling, tasks, workspace


@dataclass
class Prepared:
    """The data a training notebook learns from, split the way every stage will read it."""

    run_dir: str
    seed: int
    task: str  # binary, multiclass or regression
    classes: list[str]  # class names in code order (the target holds codes 0..K-1); empty for regression
    X: pd.DataFrame  # every feature column (the target and the sensitive features left out)
    y: pd.Series  # the target, coded as the task says
    assignment: pd.Series  # "train", "valid" or "test" per row

    def rows(self, split: str) -> tuple[pd.DataFrame, pd.Series]:
        """The features and target of one split: ``train`` to fit on, ``valid`` to tune on; leave ``test`` alone."""
        chosen = (self.assignment == split).to_numpy()
        return self.X[chosen], self.y[chosen]


def prepare(run_dir: str, data: dict[str, Any], seed: int, test_size: float = 0.2,
            valid_size: float = 0.2) -> Prepared:
    """Load the run's data and split it: stratified for a classifier, at random for a regression, seeded."""
    loaded = datasets.prepared(data, seed, workspace.work(run_dir))
    features = datasets.features(loaded.reference, data)
    y = loaded.reference[data["target"]]
    assignment = modeling.split(y, test_size, valid_size, seed, loaded.task)
    return Prepared(run_dir, seed, loaded.task, loaded.classes, loaded.reference[features], y, assignment)


def hand_over(prepared: Prepared, model: Any, *, training_seconds: float = 0.0, min_recall: float = 0.8,
              features: list[str] | None = None, model_type: str | None = None,
              evidence: dict[str, Any] | None = None) -> dict[str, Any]:
    """Give Signoff the fitted ``model``; returns (and records as ``train.*`` evidence) the training facts.

    ``features``: the columns the model takes, when not all of ``prepared.X``; ``evidence``: more
    facts to record (``model_uri``, ...).  A model that cannot score the validation rows, or scores
    them in the wrong shape for the task, is refused here, where the notebook shows why.
    """
    features = list(features or prepared.X.columns)
    valid_X, valid_y = prepared.rows("valid")
    _check_scores(model, valid_X[features], prepared)
    train_X, train_y = prepared.rows("train")
    base = modeling.baseline(prepared.task)
    modeling.fit_timed(base, train_X[features], train_y)
    threshold = None
    if prepared.task == "binary":  # the highest threshold meeting the recall asked for: the best precision
        threshold = metrics.threshold_for_recall(valid_y.to_numpy(), tasks.predictions(model, valid_X[features],
                                                                                      "binary"), min_recall)
    model_type = model_type or type(model[-1] if hasattr(model, "steps") else model).__name__
    facts = {"model_type": model_type, "task": prepared.task, "classes": prepared.classes, "threshold": threshold,
             "min_recall": min_recall, "training_seconds": training_seconds, "seed": prepared.seed}
    modeling.save(workspace.artifacts(prepared.run_dir), model, base, prepared.assignment, features, facts)
    recorded = {"task": prepared.task, "classes": prepared.classes, "model_type": model_type,
                "n_features": len(features), "features": features,
                **{f"{name}_rows": int((prepared.assignment == name).sum()) for name in modeling.SPLITS},
                "training_seconds": round(training_seconds, 3), "seed": prepared.seed, "model_uri": "",
                "allow_pickle": False, **(evidence or {})}
    if threshold is not None:
        recorded |= {"threshold": threshold, "min_recall": min_recall}
    for name, value in recorded.items():
        sb.glue(name, value)
    return recorded


def _check_scores(model: Any, X: pd.DataFrame, prepared: Prepared) -> None:
    try:
        scores = tasks.predictions(model, X.head(20), prepared.task)
    except Exception as exc:  # whatever the model raises is what the user must see
        raise ValueError(f"the model handed over cannot score the raw feature columns ({', '.join(X.columns)}): "
                         f"{type(exc).__name__}: {exc}") from exc
    expected = (min(20, len(X)), len(prepared.classes)) if prepared.task == "multiclass" else (min(20, len(X)),)
    if np.shape(scores) != expected:
        raise ValueError(f"a {prepared.task} model must score rows as {expected} (got {np.shape(scores)}): "
                         + ("a classifier with predict_proba" if prepared.task != "regression" else "a regressor"))
