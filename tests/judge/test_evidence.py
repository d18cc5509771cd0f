"""Evidence: what the stages glued, flattened into the names gates use."""

import nbformat
import pytest

from runner.judge import evidence


def glued(name, data):
    """The output `sb.glue(name, data)` leaves in a notebook."""
    payload = {"name": name, "data": data, "encoder": "json", "version": 1}
    return nbformat.v4.new_output("display_data", data={"application/scrapbook.scrap.json+json": payload},
                                  metadata={"scrapbook": {"name": name, "data": True, "display": False}})


def shown(name):
    """The output of `sb.glue(name, figure, display=True)`: only what to show, no data."""
    return nbformat.v4.new_output("display_data", data={"text/plain": "<Figure>"},
                                  metadata={"scrapbook": {"name": name, "data": False, "display": True}})


def stage_notebook(path, *outputs):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("sb.glue(...)")
    cell.outputs = list(outputs)
    nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


def test_nested_mappings_become_one_name_per_fact_and_display_scraps_are_left_out(tmp_path):
    eda = stage_notebook(tmp_path / "eda.ipynb", glued("n_rows", 500),
                         glued("missing_rate", {"income": 0.1, "age": 0.0}), shown("plot"))
    fairness = stage_notebook(tmp_path / "fairness.ipynb",
                              glued("sex", {"disparate_impact_ratio": 0.9, "excluded_groups": [], "by_group": {}}))
    facts = evidence.collect({"eda": eda, "fairness": fairness})
    assert facts == {
        "eda.n_rows": 500,
        "eda.missing_rate.income": 0.1,
        "eda.missing_rate.age": 0.0,
        "fairness.sex.disparate_impact_ratio": 0.9,
        "fairness.sex.excluded_groups": [],
        "fairness.sex.by_group": {},  # an empty mapping is a fact of its own, not nothing
    }


@pytest.mark.parametrize(("name", "found"), [
    ("fairness.sex.disparate_impact_ratio", True),
    ("fairness.sex.disparate_impact_rato", False),
    ("validate.roc_auc", True),
    ("validate.roc_auc_ci_low", False),
])
def test_declared_patterns_match_per_group_names(name, found):
    assert evidence.declared(name, ["validate.roc_auc", "fairness.*.disparate_impact_ratio"]) is found


def test_the_closest_declared_name_fills_a_pattern_with_the_name_given():
    patterns = ["validate.roc_auc", "validate.roc_auc_ci_low", "fairness.*.disparate_impact_ratio"]
    assert evidence.closest("validate.roc_acu", patterns)[0] == "validate.roc_auc"
    assert evidence.closest("fairness.sex.disparate_impact_rato", patterns) == ["fairness.sex.disparate_impact_ratio"]
