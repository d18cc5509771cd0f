"""The audit trail: run folders written once and sealed (manifest, hash chain, ledger), per-model
locks, provenance, secret redaction, HTML renders, the archive's index and model cards, and the
verification an auditor runs.
"""
