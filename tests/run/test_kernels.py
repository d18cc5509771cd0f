"""Kernel warm-up: every module a notebook imports, found without running it."""

def test_warm_up_imports_every_module_a_notebook_imports():
    import nbformat

    from runner.run.kernels import imported_modules

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import numpy as np, json\nfrom runner.analysis import datasets, plots"),
        nbformat.v4.new_code_cell("%matplotlib inline\nimport never_seen"),  # magics: skipped, not an error
        nbformat.v4.new_code_cell("def f():\n    from os import path\n    return path\nfrom . import local"),
        nbformat.v4.new_markdown_cell("import not_code"),
    ]
    assert imported_modules(nb) == ["numpy", "json", "runner.analysis", "runner.analysis.datasets",
                                   "runner.analysis.plots", "os", "os.path"]
