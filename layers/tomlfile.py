"""Reading the TOML files users write (plans, layer tables, targets) with one-line errors."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from layers.errors import InputError


def read_toml(path: str | Path, *, what: str) -> dict[str, Any]:
    """Parse a TOML file; a missing file or a syntax error names the file and ``what`` it is."""
    p = Path(path)
    if not p.exists():
        msg = f"{what} not found"
        raise InputError(msg, file=p, fix="check the path")
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        msg = f"not valid TOML ({exc})"
        raise InputError(msg, file=p, fix="correct the TOML syntax") from None
