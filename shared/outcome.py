"""Results of one call of the renewal service: decisions and notices, for the functions, the CLI and the logs."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.decision import Decision
from shared.notices import Notice


@dataclass
class Outcome:
    """The decisions per certificate and the notices of one call of the service."""

    decisions: list[tuple[str, str, Decision]] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)

    def extend(self, other: "Outcome") -> None:
        self.decisions.extend(other.decisions)
        self.notices.extend(other.notices)


@dataclass
class SweepReport(Outcome):
    """A sweep's outcome, with the counts an operator wants in the log."""

    listed: int = 0
    due: int = 0
    operations_checked: int = 0
