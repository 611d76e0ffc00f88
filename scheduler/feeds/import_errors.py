"""What goes wrong when a calendar is imported: problems, notes, and the error that lists them.

A problem's message is an English message id with ``%(name)s`` placeholders, marked with
:func:`N_` so that ``pybabel extract`` finds it: the API and the command line show it in
English, the import page in the page's language (:meth:`Problem.localized`).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext

from scheduler.i18n import N_

__all__ = ["N_", "ImportRejected", "Problem"]



#: The parameter whose value is itself an English message (an event rule's refusal): translated too.
NESTED = "problem"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with (or worth knowing about) an imported calendar: where (event, line) and what."""

    message: str
    uid: str | None = None
    summary: str | None = None
    #: Line of the file where the event (or the problem) begins, when known.
    line: int | None = None
    #: The request field at fault when it is not the file (``url``).
    field: str | None = None
    #: Values of the message's ``%(name)s`` placeholders.
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def reason(self) -> str:
        """What is wrong, in English."""
        return self.message % self.params if self.params else self.message

    def localized(self) -> str:
        """What is wrong, in the language of the request (or the application's default)."""
        params = dict(self.params)
        if isinstance(params.get(NESTED), str):
            params[NESTED] = gettext(params[NESTED])
        return gettext(self.message, **params) if params else gettext(self.message)

    def as_dict(self) -> dict[str, Any]:
        """Kept with a background import's report (see :meth:`from_dict`)."""
        return {"message": self.message, "params": dict(self.params), "uid": self.uid, "summary": self.summary,
                "line": self.line, "field": self.field}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Problem:
        """The problem :meth:`as_dict` kept."""
        return cls(str(data["message"]), data.get("uid"), data.get("summary"), data.get("line"), data.get("field"),
                   dict(data.get("params") or {}))

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
        return f"{self.where}: {self.reason}" if self.where else self.reason


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
            fields.setdefault(problem.key, []).append(where + problem.reason)
        return {key: "; ".join(messages) for key, messages in fields.items()}

    def lines(self) -> list[str]:
        """Every problem as a line of text."""
        return [str(problem) for problem in self.problems]
