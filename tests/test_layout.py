"""The package layout holds: dependencies run one way, no import cycle, one Azure boundary.

intake → pipeline → actions → azure / storage / outbound → core (audit reads through storage;
the sweep feeds intake's VM-deleted path; the digest reads audit and sends through outbound;
the CLI may use everything). Every import of a ``handlers`` package is checked, including the
ones inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = ROOT / "handlers"

#: What each package may import besides itself (``rules`` is a sibling data package).
ALLOWED = {
    "core": {"rules"},
    "storage": {"core"},
    "azure": {"core"},
    "outbound": {"core"},
    "actions": {"core", "storage", "azure", "outbound", "rules"},
    "audit": {"core", "storage"},
    "pipeline": {"core", "storage", "azure", "outbound", "actions", "rules"},
    "intake": {"core", "storage", "azure", "outbound", "actions", "pipeline", "rules"},
    "sweep": {"core", "storage", "azure", "outbound", "actions", "pipeline", "intake", "rules"},
    "digest": {"core", "storage", "outbound", "audit"},
    "cli": {"core", "storage", "azure", "outbound", "actions", "pipeline", "intake", "audit",
            "sweep", "digest", "rules"},
}  # fmt: skip


def _modules() -> Iterator[Path]:
    yield from sorted(HANDLERS.rglob("*.py"))


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, module: str) -> Iterator[tuple[str, int]]:
    """Every module ``module`` imports (absolute names) with its line."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(module.split(".")[: -node.level] + ([base] if base else []))
            yield base, node.lineno
            for alias in node.names:  # "from handlers.storage import keys" imports a module
                yield f"{base}.{alias.name}", node.lineno


def _package(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "rules":
        return "rules"
    return parts[1] if parts[0] == "handlers" and len(parts) > 1 else ""


def test_every_package_says_what_lives_there_and_what_it_may_import() -> None:
    for package in ALLOWED:
        doc = ast.get_docstring(ast.parse((HANDLERS / package / "__init__.py").read_text()))
        assert doc and "import" in doc, f"handlers/{package}/__init__.py must say what it imports"
    assert {p.name for p in HANDLERS.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(
        ALLOWED
    )
    flat = [p.name for p in HANDLERS.glob("*.py") if p.name != "__init__.py"]
    assert flat == [], "no module lives directly in handlers/"


@pytest.mark.parametrize("path", list(_modules()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_runs_upward(path: Path) -> None:
    module = _name(path)
    own = _package(module)
    wrong = [
        f"line {line}: {name}"
        for name, line in _imports(ast.parse(path.read_text(encoding="utf-8")), module)
        if _package(name) and _package(name) != own and _package(name) not in ALLOWED[own]
    ]
    assert wrong == [], f"{module} ({own}) may import only {sorted(ALLOWED[own])}"


def test_only_the_azure_package_imports_the_management_sdks() -> None:
    offenders = [
        f"{_name(path)}: {name}"
        for path in _modules()
        for name, _ in _imports(ast.parse(path.read_text(encoding="utf-8")), _name(path))
        if name.startswith("azure.mgmt") and _package(_name(path)) != "azure"
    ]
    assert offenders == []


def _top_level_graph() -> dict[str, set[str]]:
    """Module → ``handlers`` modules it imports when it is loaded (not inside functions or
    ``TYPE_CHECKING``)."""
    names = {_name(p) for p in _modules()}
    graph: dict[str, set[str]] = {}
    for path in _modules():
        module = _name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        loaded = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        found = {name for node in loaded for name, _ in _imports(node, module)}
        graph[module] = {name for name in found if name in names and name != module}
    return graph


def test_there_is_no_import_cycle() -> None:
    graph = _top_level_graph()
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                raise AssertionError(" → ".join([*trail, module, target]))
            if target not in state:
                visit(target, [*trail, module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
