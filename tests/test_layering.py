"""The package's layering, read from the source with `ast` (function-level imports included).

Core returns data: it never imports the CLI, magics, server, widgets or renderers (a
result's `_repr_html_` may reach the renderer lazily), the third-party engines are each
imported by one adapter, and core's modules import each other without cycles.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nbversion"
PRESENTATION = ("nbversion.widgets", "nbversion.render", "nbversion.renderers", "nbversion.cli",
                "nbversion.magics", "nbversion.server", "nbversion.commands")
# the only function in core allowed to import presentation, lazily: notebook display
LAZY_PRESENTATION_OK = {"_repr_html_"}
# git itself is run as a process by `_git` (GitPython is not imported any more); were a git
# library imported again, only `_git` may. DVC's adapter is three modules split by theme to stay
# under the house's module size: opening DVC's Repo (`_dvc_session`), local data (`_dvc`, which
# callers use), remotes and transfers (`_dvc_remote`, re-exported by `_dvc`).
DVC_ADAPTER = ["nbversion.core.backends._dvc", "nbversion.core.backends._dvc_remote",
               "nbversion.core.backends._dvc_session"]
ADAPTERS = {"git": ["nbversion.core.backends._git"], "dvc": DVC_ADAPTER, "dvc_data": DVC_ADAPTER,
            "ultralytics": ["nbversion.training._yolo"]}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py") if "labextension" not in p.parts}


def imports(module: str) -> list[tuple[str, str]]:
    """(imported module, enclosing function or '') for every import statement of `module`."""
    path = MODULES[module]
    found = []

    def visit(node, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, child.name)
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue    # annotations only: never imported at run time
            if isinstance(child, ast.Import):
                found.extend((alias.name, function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                    base = base[:len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module
                found.append((target, function))
                # `from . import x` imports the submodule x
                found.extend((f"{target}.{a.name}", function) for a in child.names if f"{target}.{a.name}" in MODULES)
            visit(child, function)

    visit(ast.parse(path.read_text()), "")
    return found


def internal(target: str) -> str | None:
    """The module of ours an import statement loads (a name imported from a module: the module)."""
    while target not in MODULES and "." in target:
        target = target.rsplit(".", 1)[0]
    return target if target in MODULES else None


def package_graph(prefix: str = "nbversion") -> dict[str, set[str]]:
    """module -> the modules under `prefix` it imports (but a result's lazy `_repr_html_`)."""
    graph = {}
    for module in MODULES:
        if module.startswith(prefix):
            graph[module] = {t for t in (internal(name) for name, function in imports(module)
                                         if function not in LAZY_PRESENTATION_OK)
                             if t and t != module and t.startswith(prefix)}
    return graph


def core_graph() -> dict[str, set[str]]:
    return package_graph("nbversion.core")


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, groups, counter = {}, {}, [], set(), [], [0]

    def connect(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return groups


def test_core_imports_no_presentation_cli_or_server():
    wrong = [f"{module} imports {name}" + (f" in {function}()" if function else "")
             for module in MODULES if module.startswith("nbversion.core")
             for name, function in imports(module)
             if name.startswith(PRESENTATION) and function not in LAZY_PRESENTATION_OK]
    assert wrong == []


def test_core_results_reach_the_renderer_only_for_notebook_display():
    from nbversion.core.artifacts.models import ModelCompareResult

    result = ModelCompareResult(["a@v1", "a@v2"], ["1" * 40, "2" * 40],
                                [{"kind": "metric", "key": "mAP50-95", "values": [0.2, 0.4], "best": 1}])
    assert "<svg" not in str(result) and "a@v2" in str(result)
    assert "<svg" in result._repr_html_() and "mAP50-95" in result._repr_html_()


@pytest.mark.parametrize("library", sorted(ADAPTERS))
def test_only_its_adapter_imports_a_third_party_engine(library):
    importers = sorted({module for module in MODULES for name, _ in imports(module)
                        if name == library or name.startswith(library + ".")})
    if library == "git":
        assert importers == []
    else:
        assert importers and set(importers) <= set(ADAPTERS[library]), importers


def test_core_has_no_import_cycles():
    """Function-level imports included: a cycle there still ties two modules into one."""
    assert [sorted(group) for group in cycles(core_graph())] == []


def test_the_cycles_this_layering_broke_stay_broken():
    graph = core_graph()
    artifacts = {"nbversion.core.artifacts.datasets", "nbversion.core.artifacts.dataset_view",
                 "nbversion.core.artifacts.dataset_diff"}
    assert not any(group & artifacts for group in cycles(graph))
    # core -> training -> widgets -> core: no cycle holds both core and the widgets
    assert not [sorted(group) for group in cycles(package_graph())
                if any(m.startswith("nbversion.core") for m in group)
                and any(m.startswith("nbversion.widgets") for m in group)]


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
