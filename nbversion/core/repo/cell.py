"""The notebook cell that started an operation, recorded as commit trailers and lineage.

Front ends set it (the magics know the shell, execution count and source); core reads it.
A contextvar, so a background training thread started from a cell keeps its cell.
"""
from __future__ import annotations

import hashlib
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Optional


@dataclass(frozen=True)
class CellContext:
    notebook: Optional[str]
    execution_count: Optional[int]
    source_sha256: str

    @classmethod
    def from_source(cls, notebook, execution_count, source: str) -> "CellContext":
        return cls(notebook, execution_count, hashlib.sha256(source.encode()).hexdigest())

    def trailers(self) -> list[str]:
        lines = []
        if self.notebook:
            lines.append(f"Nbversion-Notebook: {self.notebook}")
        lines.append(f"Nbversion-Cell: {self.execution_count} sha256:{self.source_sha256[:16]}")
        return lines

    def to_dict(self) -> dict:
        return asdict(self)


current_cell: ContextVar[Optional[CellContext]] = ContextVar("nbversion_cell", default=None)


def parse_trailers(body: str) -> dict:
    """`Nbversion-Notebook` / `Nbversion-Cell` trailers of a commit message body."""
    found = {}
    for line in body.splitlines():
        if line.startswith("Nbversion-Notebook: "):
            found["notebook"] = line.split(": ", 1)[1]
        elif line.startswith("Nbversion-Cell: "):
            count, _, digest = line.split(": ", 1)[1].partition(" ")
            found["cell"] = count
            found["cell_sha256"] = digest.removeprefix("sha256:")
    return found


def with_trailers(message: str) -> str:
    ctx = current_cell.get()
    if ctx is None:
        return message
    return message.rstrip("\n") + "\n\n" + "\n".join(ctx.trailers()) + "\n"
