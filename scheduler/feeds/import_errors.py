"""What goes wrong when a calendar is imported: problems, and the error that lists them."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an imported calendar: where (event, line) and what."""

    message: str
    uid: str | None = None
    summary: str | None = None
    #: Line of the file where the event (or the problem) begins, when known.
    line: int | None = None
    #: The request field at fault when it is not the file (``url``).
    field: str | None = None

    @property
    def where(self) -> str:
        """``line 12, event abc@example.org (科普日)``; empty for the file as a whole."""
        parts = []
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.uid:
            parts.append(f"event {self.uid}" + (f" ({self.summary})" if self.summary else ""))
        elif self.summary:
            parts.append(f"event ({self.summary})")
        return ", ".join(parts)

    @property
    def key(self) -> str:
        """A name for the problem's place in an API error's ``fields``: ``events.<uid>``, ``events``, ``file`` or ``url``."""
        if self.field:
            return self.field
        if self.uid:
            return f"events.{self.uid}"
        return "events" if self.summary else "file"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class ImportRejected(Exception):
    """The calendar was not imported (nothing was written) because of :attr:`problems`."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        super().__init__(f"The calendar was not imported ({count} problem{'s' if count != 1 else ''}); nothing was saved.")

    @property
    def message(self) -> str:
        """The one-line summary."""
        return str(self.args[0])

    def fields(self) -> dict[str, str]:
        """The problems keyed for an API error (several problems of one event are joined)."""
        fields: dict[str, list[str]] = {}
        for problem in self.problems:
            where = f"line {problem.line}: " if problem.line is not None else ""
            fields.setdefault(problem.key, []).append(where + problem.message)
        return {key: "; ".join(messages) for key, messages in fields.items()}

    def lines(self) -> list[str]:
        """Every problem as a line of text."""
        return [str(problem) for problem in self.problems]
