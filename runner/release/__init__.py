"""Releasing: the MLflow tracking run and model registry (versions, aliases, hashes of the model
files), and the decisions that register, promote, approve, reject and roll back a model.
"""
