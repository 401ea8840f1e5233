"""What is wrong with a plan file, where, and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.errors import DomainError


@dataclass(frozen=True)
class PlanProblem:
    """One problem in a plan file.

    `line` and `column` are 1-based; both are None when the problem is about the file as a whole
    (missing, unreadable). `path` names the place in the plan ("waves[1].selector", 0-based indices);
    it is "" when the problem is not inside the document (unreadable file, malformed YAML).
    """

    file: str
    line: int | None
    column: int | None
    path: str
    message: str
    fix: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}:{self.column or 1}"
        inside = f" {self.path}:" if self.path else ""
        return f"{where}:{inside} {self.message} — fix: {self.fix}"


class PlanInvalid(DomainError):
    """The plan file can't be used; `problems` lists every problem found, in file order."""

    def __init__(self, problems: list[PlanProblem]) -> None:
        self.problems = problems
        count = len(problems)
        lines = "\n".join(str(problem) for problem in problems)
        super().__init__(f"the plan has {count} problem{'s' if count != 1 else ''}:\n{lines}")
