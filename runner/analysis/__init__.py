"""The analysis library: what the stage notebooks import, inside their kernels.

Data loading and checks, models, metrics, robustness, serving costs, explanations, fairness,
drift, champion comparison, plots and the report's helpers.  Nothing here imports the other
rooms: a kernel never needs the archive, the gates or the registry to record its evidence.
"""
