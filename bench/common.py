"""The table type benchmarks return, its plain-text printer, and what benchmarks share."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from testbed.asterisk import AsteriskInstance, ensure_root, test_ports, test_slot


@dataclass(frozen=True)
class Table:
    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[object]]
    notes: Sequence[str] = field(default=())


BenchResult = Table | Sequence[Table] | Sequence[Mapping[str, object]]


def as_tables(title: str, result: BenchResult) -> list[Table]:
    """A ``run()`` result as tables: rows given as dicts become one table named ``title``."""
    if isinstance(result, Table):
        return [result]
    items = list(result)
    if items and all(isinstance(item, Mapping) for item in items):
        rows = [item for item in items if isinstance(item, Mapping)]
        columns = list(rows[0])
        return [Table(title, columns, [[row.get(col, "") for col in columns] for row in rows])]
    return [item for item in items if isinstance(item, Table)]


def format_table(table: Table) -> str:
    """Title, aligned columns (numbers right-aligned), then the notes, one per line."""
    cells = [[str(col) for col in table.columns]]
    cells += [[_cell(value) for value in row] for row in table.rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(table.columns))]
    numeric = [
        all(isinstance(row[i], int | float) for row in table.rows) for i in range(len(widths))
    ]
    lines = [table.title, "=" * len(table.title)]
    for line in cells:
        padded = [
            value.rjust(width) if is_number else value.ljust(width)
            for value, width, is_number in zip(line, widths, numeric, strict=True)
        ]
        lines.append("  ".join(padded).rstrip())
    lines.extend(table.notes)
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for the controller's HTTP API)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def slot_instance(name: str) -> Iterator[tuple[Path, AsteriskInstance]]:
    """A fresh Asterisk instance of this test slot's ports (not started yet) and a temporary
    state folder for it and the bench's files, removed afterwards."""
    ensure_root()
    slot = test_slot()
    with tempfile.TemporaryDirectory(prefix=f"callctl-bench-{name}-") as tmp:
        state = Path(tmp)
        yield state, AsteriskInstance(f"{name}{slot or ''}", state, test_ports(slot), fresh=True)
