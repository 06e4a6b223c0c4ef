"""The package's shape, checked from its source: no import cycles, stages apart, LeRobot behind one adapter,
modules of a readable size."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "runner"
# A module longer than this says why in its docstring ("Over 400 lines: ...").
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path) -> set[str]:
    """The modules ``path`` imports at run time (module level or inside functions; not under TYPE_CHECKING)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


GRAPH = {name: {m for m in _imports(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def _cycle() -> list[str] | None:
    """One import cycle among runner's modules, as the list of modules around it, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = "open"
        stack.append(name)
        for target in sorted(GRAPH[name]):
            # A package's __init__ is imported with each of its modules: not an edge back to them.
            if name.startswith(target + "."):
                continue
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[name] = "done"
        return None

    for name in sorted(GRAPH):
        if name not in state and (found := visit(name)):
            return found
    return None


def test_no_module_imports_itself_back_through_others():
    cycle = _cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_finds_a_cycle(monkeypatch):
    monkeypatch.setitem(GRAPH, "runner.core.outputs", GRAPH["runner.core.outputs"] | {"runner.core.context"})
    assert _cycle() is not None


def test_stages_never_import_each_other():
    stages = {name for name in MODULES if name.startswith("runner.stages.") and name != "runner.stages"}
    for name in stages:
        own = name.split(".")[2]
        others = {m for m in GRAPH[name] if m in stages and m.split(".")[2] != own}
        assert not others, f"{name} imports {sorted(others)}: shared work belongs in core/ or a named module"


def test_only_the_adapter_imports_lerobot():
    for name, path in MODULES.items():
        if name.startswith("runner.lerobot_adapter"):
            continue
        lerobot = sorted(m for m in _imports(path) if m == "lerobot" or m.startswith("lerobot."))
        assert not lerobot, f"{name} imports {lerobot[0]}: LeRobot calls go through runner.lerobot_adapter"


def test_a_module_over_400_lines_says_why():
    for name, path in MODULES.items():
        lines = len(path.read_text().splitlines())
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        assert lines <= MAX_LINES or f"Over {MAX_LINES} lines:" in docstring, (
            f"{name} has {lines} lines: split it, or say in its docstring why not (Over {MAX_LINES} lines: ...)"
        )


def test_the_tests_mirror_the_package():
    """tests/<folder>/ holds the tests of runner/<folder>/: a new package gets its folder of tests beside the others."""
    folders = {p.name for p in (REPO / "tests").iterdir() if p.is_dir() and any(p.glob("test_*.py"))}
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert folders <= packages, f"tests/ folders without a runner/ package: {sorted(folders - packages)}"
    loose = sorted(p.name for p in (REPO / "tests").glob("test_*.py"))
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert all(name.removeprefix("test_").removesuffix(".py") in modules for name in loose), (
        f"tests at the top of tests/ test a top-level module of runner/ by name: {loose}"
    )
