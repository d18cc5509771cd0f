"""Judging: the evidence the notebooks recorded, checked against the declared gates, and the release
checklist answered; fail closed.  Pure functions over dicts, no files or processes.
"""
