"""The one error type for user mistakes, and how it is worded.

Every reader and validator raises :class:`InputError`; ``app.py`` prints ``str(err)`` as one line
and exits with code 2.  Keeping the wording in one place keeps every message in the same shape:
``<file>, row <n>, column '<col>': <problem>; fix: <fix>``.
"""

from __future__ import annotations

from os import PathLike


class InputError(ValueError):
    """A problem with user input that the user can fix.

    Parameters
    ----------
    problem
        What is wrong, in plain words ("population is negative (-3)").
    file
        The file (or plan key) the problem was found in.
    row
        1-based data row (header excluded) or feature number, when the problem is in one row.
    column
        The column or field concerned.
    fix
        What the user should do about it.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | PathLike[str] | None = None,
        row: int | None = None,
        column: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = None if file is None else str(file)
        self.row = row
        self.column = column
        self.fix = fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The one-line message shown to the user."""
        where = [p for p in (self.file,) if p]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        text = (", ".join(where) + ": " if where else "") + self.problem
        if self.fix:
            text += f"; fix: {self.fix}"
        return " ".join(text.split())  # always one line

    def __str__(self) -> str:
        return self.message
