"""The rooms of ``runner/`` as docs/ARCHITECTURE.md draws them: kernels' code apart, no cycles, no side effects."""

import ast
import subprocess
import sys

from conftest import ROOT

PACKAGE = ROOT / "runner"
ROOMS = ("analysis", "judge", "audit", "release", "run")
# what each room may import besides itself and the shared top-level modules (errors, config, records, ...)
ALLOWED = {
    "analysis": set(),
    "judge": set(),
    "audit": {"analysis"},
    "release": {"audit"},
    "run": {"analysis", "judge", "audit", "release"},
}


def room_imports() -> dict[str, set[str]]:
    """For each room, the other rooms its modules import (at any depth of the module, lazily or not)."""
    found: dict[str, set[str]] = {room: set() for room in ROOMS}
    for room in ROOMS:
        for path in (PACKAGE / room).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
                for name in names:
                    parts = name.split(".")
                    if parts[0] == "runner" and len(parts) > 1 and parts[1] in ROOMS and parts[1] != room:
                        found[room].add(parts[1])
    return found


def test_each_room_imports_only_the_rooms_below_it():
    imports = room_imports()
    assert {room: imports[room] - ALLOWED[room] for room in ROOMS} == {room: set() for room in ROOMS}


def test_the_shared_top_level_modules_import_no_room():
    for name in ("errors", "config", "records", "mlflow_store", "startup"):
        tree = ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {m for m in modules if m.split(".")[:2][-1] in ROOMS}, name


def test_importing_runner_changes_nothing_outside_it():
    code = ("import sys; before = dict(sys.modules); import runner; "
            "changed = [k for k in set(sys.modules) ^ set(before) if not k.startswith('runner')]; "
            "changed += [k for k in set(sys.modules) & set(before) if sys.modules[k] is not before[k]]; "
            "print(sorted(changed))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_sub_package_says_what_it_owns():
    for room in ROOMS:
        assert len(ast.get_docstring(ast.parse((PACKAGE / room / "__init__.py").read_text())) or "") > 80, room
