"""The table type benchmarks return, and its plain-text printer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


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
