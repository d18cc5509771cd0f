"""README's evidence table and the stage notebooks' declarations tell the same story."""

import re

from conftest import ROOT

from runner.judge import evidence
from runner.run import stages

SUFFIXES = ("_ci_low", "_ci_high", "_lift")


def evidence_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("### Evidence names", 1)[1].split("\n## ", 1)[0]


def test_every_declared_evidence_name_is_explained_in_the_readme():
    section = evidence_section()
    unexplained = []
    for name in [*evidence.RUN_FACTS, *evidence.MONITOR_FACTS,
                 *(n for stage in stages.discover(ROOT / "notebooks") for n in stage.declared())]:
        last = name.removesuffix(".*").rsplit(".", 1)[-1].removeprefix("baseline_")
        for suffix in SUFFIXES:
            last = last.removesuffix(suffix)
        if not re.search(rf"\b{re.escape(last)}\b", section):
            unexplained.append(name)
    assert unexplained == []


def test_every_evidence_name_the_readme_shows_is_declared():
    declared = [*evidence.RUN_FACTS, *evidence.MONITOR_FACTS,
                *(n for stage in stages.discover(ROOT / "notebooks") for n in stage.declared())]
    shown = re.findall(r"`((?:eda|train|validate|explain|fairness|drift|infra|champion|checklist|monitor)\.[^`*{]+)`",
                       evidence_section())
    named = [name.replace("<feature>", "x").replace("<column>", "x") for name in shown]
    assert [n for n in named if not evidence.declared(n, declared)] == []
