"""The CSV columns docs/reports.md documents, for the tests that check the exports against it."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "reports.md"


def documented_columns() -> dict[str, list[str]]:
    """The column names each export's table in docs/reports.md lists, in order, by export
    ("intervals", "agents", "calls")."""
    tables: dict[str, list[str]] = {}
    current = None
    for line in DOCS.read_text().splitlines():
        heading = re.match(r"### (\w+)\.csv", line)
        if heading:
            current = tables.setdefault(heading.group(1), [])
        elif current is not None and (column := re.match(r"\| `(\w+)` \|", line)):
            current.append(column.group(1))
    return tables
