"""Markdown tables for the bench's report, and the ✓/✗ of a figure against its target."""

from __future__ import annotations


def verdict(value: float | None, limit: float, text: str) -> str:
    if value is None:
        return text
    return f"{text} {'✓' if value <= limit else '✗'}"


class Table:
    def __init__(self, head: tuple[str, ...]) -> None:
        self.head = head
        self.rows: list[tuple[str, ...]] = []

    def add(self, *cells: str) -> None:
        # An error message must not break the table: no pipes, no line breaks.
        self.rows.append(tuple(" ".join(c.replace("|", "/").split()) for c in cells))

    def render(self) -> str:
        lines = ["| " + " | ".join(self.head) + " |", "|" + "---|" * len(self.head)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)
