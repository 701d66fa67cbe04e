"""Layering of src/shopml, read from the source with ``ast`` (function-level imports too):

    data, evaluation  <  the jobs (recommend, sessions, intent, customers, pricing, behaviour)
                      <  pipeline  <  cli, service

Lower layers never import higher ones, the training loop never imports the CLI, the
pipeline never imports the service, and no modules import each other at module level
(artifacts.py and runs.py not even inside functions). Optional imports of shopml's own
modules are refused too: every module ships with shopml, so a broken import must fail.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
JOBS = {"recommend", "sessions", "intent", "customers", "pricing", "behaviour"}
TOP = {"cli", "service", "pipeline"}


@dataclass(frozen=True)
class Edge:
    src: str  # importing module, e.g. "shopml.data.events"
    dst: str  # imported module (the longest shopml module the name resolves to)
    line: int
    module_level: bool  # runs at import time (not inside a function, not under TYPE_CHECKING)

    def __str__(self) -> str:
        return f"{self.src} -> {self.dst} (line {self.line}{'' if self.module_level else ', in a function'})"


def _modules() -> dict[str, tuple[Path, bool]]:
    mods = {}
    for path in sorted((SRC / "shopml").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return mods


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imported_names(node: ast.AST, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(parts + ([base] if base else []))
        # `from shopml.data import sequences` imports the submodule, not just the package
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return [node.args[0].value]
    return []


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, module_level: bool):
    """Every node below ``node`` with whether it runs when the module is imported."""
    for child in ast.iter_child_nodes(node):
        inner = module_level and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        if isinstance(child, ast.If) and _is_type_checking(child):
            inner = False
        yield child, inner
        yield from _walk(child, inner)


def _edges_of(module: str) -> list[Edge]:
    path, is_pkg = MODULES[module]
    package = module if is_pkg else module.rpartition(".")[0]
    edges = []
    for node, module_level in _walk(ast.parse(path.read_text(), str(path)), True):
        for name in _imported_names(node, package):
            target = _resolve(name) if name.split(".")[0] == "shopml" else None
            if target and target != module:
                edges.append(Edge(module, target, node.lineno, module_level))
    return edges


EDGES = [e for m in MODULES for e in _edges_of(m)]


def _layer(module: str) -> str:
    """``shopml.data.events`` -> ``data``; ``shopml.training`` -> ``training``."""
    return module.split(".")[1] if module.count(".") else ""


def _violations(src_layers: set[str], dst_layers: set[str]) -> list[str]:
    return [str(e) for e in EDGES if _layer(e.src) in src_layers and _layer(e.dst) in dst_layers]


def test_the_import_graph_is_read():
    """The parser sees what it must (guards the tests below against passing on an empty graph)."""
    assert len(MODULES) > 50 and len(EDGES) > 200
    assert any(e.src == "shopml.runs" and e.dst == "shopml.artifacts" and e.module_level for e in EDGES)
    assert any(e.src == "shopml.pipeline" and e.dst == "shopml.recommend.job" and not e.module_level for e in EDGES)


@pytest.mark.parametrize(("lower", "upper"), [
    ({"data", "evaluation"}, JOBS | TOP),
    (JOBS, TOP),
    ({"training"}, {"cli"}),
    ({"pipeline"}, {"service"}),
])
def test_lower_layers_do_not_import_higher_ones(lower, upper):
    bad = _violations(lower, upper)
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_artifacts_and_runs_do_not_import_each_other_both_ways():
    a_to_r = [str(e) for e in EDGES if e.src == "shopml.artifacts" and e.dst == "shopml.runs"]
    r_to_a = [str(e) for e in EDGES if e.src == "shopml.runs" and e.dst == "shopml.artifacts"]
    assert not (a_to_r and r_to_a), "artifacts <-> runs cycle:\n" + "\n".join(a_to_r + r_to_a)


def _cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.src, set()).add(e.dst)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_module_level_import_cycle():
    level = [e for e in EDGES if e.module_level]
    cycles = _cycles(level)
    detail = [str(e) for c in cycles for e in level if e.src in c and e.dst in c]
    assert not cycles, f"module-level import cycles {cycles}:\n" + "\n".join(detail)


def test_cycle_finder_finds_a_planted_cycle():
    planted = [Edge("a", "b", 1, True), Edge("b", "c", 1, True), Edge("c", "a", 1, True), Edge("c", "d", 1, True)]
    assert _cycles(planted) == [["a", "b", "c"]]


def _optional_shopml_imports(path: Path) -> list[str]:
    """``try: import shopml.x / except ImportError`` blocks: a stand-in for one's own code."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Try):
            continue
        caught = {ast.unparse(h.type) for h in node.handlers if h.type is not None}
        if not any(n in c for c in caught for n in ("ImportError", "ModuleNotFoundError")):
            continue
        for inner in (n for stmt in node.body for n in ast.walk(stmt)):
            names = [a.name for a in inner.names] if isinstance(inner, ast.Import) else (
                [inner.module or ""] if isinstance(inner, ast.ImportFrom) and not inner.level else [])
            if any(n.split(".")[0] == "shopml" for n in names) or (isinstance(inner, ast.ImportFrom) and inner.level):
                found.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    return found


def test_no_optional_import_of_shopml_modules():
    bad = [hit for path, _ in MODULES.values() for hit in _optional_shopml_imports(path)]
    assert not bad, "shopml's own modules are always installed; import them plainly:\n" + "\n".join(bad)


def test_tests_do_not_skip_when_a_shopml_module_fails_to_import():
    bad = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "importorskip" and node.args
                    and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith("shopml")):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bad, "an import regression of shopml must fail, not skip:\n" + "\n".join(bad)
