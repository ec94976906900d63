"""Reading the small text files users write (plans, layer tables, targets, totals), one-line errors.

TOML must be UTF-8, but on Chinese Windows, Notepad (before 2019), WPS and Excel save "ANSI"
text, which is GBK.  Such a file is decoded as GB18030 (a superset of GBK that maps every
byte sequence it accepts to exactly one character, so nothing is lost) with a warning that asks
for UTF-8: the planner cannot tell the two apart, :mod:`layers.io` already reads GBK tables the
same way, and everything a wrong guess could change in a plan (paths, column names, layer
kinds) is checked against the real files afterwards.  A file that mixes both encodings is
refused, naming the line, because one of the two readings garbles some of its text.
"""

from __future__ import annotations

import codecs
import logging
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from layers.errors import InputError

log = logging.getLogger(__name__)

_HAN = re.compile("[\u3400-\u9fff]")  # a Chinese character read correctly as UTF-8


def decode_text(raw: bytes, *, file: str | PathLike[str], what: str) -> str:
    """Decode a user's text file: UTF-8 (with or without BOM), UTF-16 with BOM, or GBK.

    Parameters
    ----------
    raw
        The file's bytes.
    file
        Named in the warning and in errors.
    what
        What the file is ("plan file"), for the messages.

    Returns
    -------
    The text, without a byte-order mark.

    Raises
    ------
    InputError
        When some lines are UTF-8 Chinese and others are not (mixed encodings), or the bytes are
        neither UTF-8 nor GB18030.
    """
    name = Path(file).name
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = raw.decode("utf-16")
        except UnicodeDecodeError:
            msg = f"{what} starts with a UTF-16 mark but is not UTF-16"
            raise InputError(msg, file=file, fix="save it as UTF-8") from None
        log.warning("%s: %s is UTF-16; read it, but save it as UTF-8", name, what)
        return text
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    lines = raw.splitlines()
    bad_line = next((n for n, line in enumerate(lines, start=1) if not _is_utf8(line)), 1)
    if any(_HAN.search(line.decode("utf-8", errors="ignore")) for line in lines if _is_utf8(line)):
        msg = f"{what} mixes encodings: line {bad_line} is not UTF-8 but other lines are"
        raise InputError(msg, file=file, fix=f"retype line {bad_line} and save the file as UTF-8")
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError:
        msg = f"{what} is neither UTF-8 nor GBK (line {bad_line})"
        raise InputError(msg, file=file, fix="save it as UTF-8") from None
    log.warning(
        "%s: %s is GBK-encoded, not UTF-8; read it as GBK (save it as UTF-8 to silence this)",
        name,
        what,
    )
    return text


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return True


def read_toml(path: str | Path, *, what: str) -> dict[str, Any]:
    """Parse a TOML file; a missing file or a syntax error names the file and ``what`` it is.

    The text may be UTF-8 (with or without BOM) or GBK; see :func:`decode_text`.
    """
    p = Path(path)
    if not p.exists():
        msg = f"{what} not found"
        raise InputError(msg, file=p, fix="check the path")
    if p.is_dir():
        msg = f"{what} is a folder, not a file"
        raise InputError(msg, file=p, fix="give the .toml file inside it")
    text = decode_text(p.read_bytes(), file=p, what=what)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"not valid TOML ({exc})"
        raise InputError(msg, file=p, fix="correct the TOML syntax") from None


def check_keys(
    table: Mapping[str, Any],
    allowed: Iterable[str],
    *,
    where: str,
    file: str | PathLike[str] | None,
) -> None:
    """Refuse a key that is not in ``allowed``, naming the closest valid key.

    A misspelt key in a hand-written file is otherwise ignored and its default used without a
    word (``coord = "gcj02"`` for ``coords`` moves every canteen ~500 m), so every level of
    every file users write is checked with this one function.

    Parameters
    ----------
    table
        The parsed table.
    allowed
        Its valid keys.
    where
        Where the table is, as the user sees it (``"[layers] canteen"``).
    file
        The file, for the message.
    """
    from layers.validate import closest

    options = [str(a) for a in allowed]
    for key in table:
        if str(key) in options:
            continue
        near = closest(str(key), options)
        hint = f"did you mean '{near}'? " if near else ""
        listed = ", ".join(options) if options else "none"
        msg = f"{where}: unknown key '{key}'"
        raise InputError(msg, file=file, fix=f"{hint}valid keys: {listed}")


def finite_number(value: Any) -> float | None:
    """A TOML value as a finite float; ``None`` for text that is no number, booleans, NaN, inf.

    Plans and layer tables take numbers written as numbers or as text ("4.5"); a boolean is
    never a number here, whatever Python says.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
