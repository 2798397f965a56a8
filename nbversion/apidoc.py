"""Write docs/api.md from the docstrings: `python -m nbversion.apidoc > docs/api.md`.

The documented API is `nbv.open`, `nbv.init`, `nbv.load_model`, every public `Workspace` method
and the results they return. tests/test_api.py regenerates the page and fails when it is stale,
so the page cannot drift from the code.
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import sys
import typing

COMMAND = "python -m nbversion.apidoc > docs/api.md"
# what every Result has for display (render.Result), not part of what a result tells
RENDERING = {"table", "highlight", "summary", "extra_html", "to_dict", "emit", "widget"}

HEADER = f"""# Python API

<!-- generated from the docstrings by `{COMMAND}`; do not edit by hand -->

Everything the CLI (`nbversion VERB`) and the magics (`%mv_VERB`) do is a method of a
`Workspace`; the method *is* the operation's function, so `help(ws.register)`, Shift-Tab in
Jupyter and IDEs show the same signature and text as this page. Every verb returns a result
dataclass that prints as a table, renders as HTML in a notebook, and has `to_dict()`.
Errors are `nbversion.NbversionError` subclasses with a `message` and a `hint`.

```python
import nbversion as nbv
ws = nbv.open(".")
ws.register("det", bump="minor", source="yolov8n-20260131-140000")
```
"""


def _annotation(text) -> str:
    return text if isinstance(text, str) else inspect.formatannotation(text)


def signature(name: str, func, bound: bool) -> str:
    """`name(param: type = default, ...) -> type`, annotations as written in the source."""
    sig = inspect.signature(func)
    params = list(sig.parameters.values())[1 if bound else 0:]
    parts = []
    for p in params:
        text = p.name if p.annotation is p.empty else f"{p.name}: {_annotation(p.annotation)}"
        if p.default is not p.empty:
            text += f"={p.default!r}" if p.annotation is p.empty else f" = {p.default!r}"
        parts.append(text)
    returns = "" if sig.return_annotation is sig.empty else f" -> {_annotation(sig.return_annotation)}"
    return f"{name}({', '.join(parts)}){returns}"


def _type_namespace(func) -> dict:
    """The function's globals plus what its module imports under `if TYPE_CHECKING:`."""
    namespace = dict(func.__globals__)
    module = sys.modules[func.__module__]
    tree = ast.parse(inspect.getsource(module))
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            namespace["__package__"] = module.__package__
            exec(compile(ast.Module(node.body, []), module.__file__, "exec"), namespace)   # noqa: S102
    return namespace


def returned_classes(func) -> list[type]:
    """The classes a function's return annotation names (both sides of `A | B`)."""
    func = inspect.unwrap(func)   # @contextmanager's wrapper lives in contextlib
    hint = typing.get_type_hints(func, _type_namespace(func)).get("return")
    found = []
    for candidate in typing.get_args(hint) or (hint,):
        if inspect.isclass(candidate) and candidate.__module__.startswith("nbversion."):
            found.append(candidate)
    return found


def workspace_members() -> list[tuple[str, object]]:
    """Public Workspace methods and properties, in the order the class lists them."""
    from .core.workspace import Workspace

    return [(name, member) for name, member in vars(Workspace).items()
            if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, property))]


def _doc_block(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return f"```text\n{doc}\n```\n" if doc else ""


def _function_section(title: str, func, bound: bool) -> str:
    return f"### `{signature(title, func, bound)}`\n\n{_doc_block(func)}"


def _first_sentence(doc: str) -> str:
    paragraph = " ".join(doc.partition("\n\n")[0].split())
    head, dot, _rest = paragraph.partition(". ")
    return head + "." if dot else paragraph


def _class_section(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    if doc.startswith(cls.__name__ + "("):   # the signature dataclasses write: the table says it
        doc = ""
    lines = [f"### `{cls.__name__}`", "", f"`{cls.__module__}.{cls.__qualname__}`", ""]
    if doc:
        lines += [doc, ""]
    if dataclasses.is_dataclass(cls):
        lines += ["| field | type |", "|---|---|"]
        for f in dataclasses.fields(cls):
            if not f.name.startswith("_"):
                kind = _annotation(f.type).replace("|", "\\|")   # a table cell cannot hold a bare |
                lines.append(f"| `{f.name}` | `{kind}` |")
        lines.append("")
    for name, member in vars(cls).items():
        if name.startswith("_") or name in RENDERING:
            continue
        summary = _first_sentence(inspect.getdoc(member) or "")
        if isinstance(member, property):
            lines.append(f"- `{name}` (property){': ' + summary if summary else ''}")
        elif inspect.isfunction(member):
            lines.append(f"- `{signature(name, member, bound=True)}`{': ' + summary if summary else ''}")
    return "\n".join(lines) + "\n"


def render() -> str:
    """The whole of docs/api.md."""
    import nbversion

    out = [HEADER, "## Module functions\n"]
    for name in ("open", "init", "load_model"):
        out.append(_function_section(f"nbv.{name}", getattr(nbversion, name), bound=False))
    from .core.workspace import Workspace

    out.append("## Workspace\n")
    out.append(_doc_block(Workspace))
    results: dict[str, type] = {}
    for name, member in workspace_members():
        if isinstance(member, property):
            out.append(f"### `ws.{name}` (property)\n\n{_doc_block(member)}")
            continue
        out.append(_function_section(f"ws.{name}", member, bound=True))
        for cls in returned_classes(member):
            results.setdefault(f"{cls.__module__}.{cls.__qualname__}", cls)
    out.append("## Results\n")
    out.append("What the verbs return. Same-named classes of different modules are told apart by their module.\n")
    for key in sorted(results, key=lambda k: (results[k].__name__, k)):
        out.append(_class_section(results[key]))
    return "\n".join(out).rstrip("\n") + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
