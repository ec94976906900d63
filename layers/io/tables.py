"""CSV and XLSX tables as offices write them: encodings, separators, title rows, numbers.

A CSV is UTF-8 (with or without BOM) or GB18030/GBK, the whole file; one that is UTF-8 except for
a pasted row is an error naming the row.  The separator is ``,`` ``;`` tab or ``|``.  The header
may sit below a title row or span two rows of merged cells.  Numbers may carry thousands
separators, full-width digits or a count unit; codes with leading zeros stay text.  Points come
from coordinate columns, other shapes from WKT; written tables get ``lon``/``lat`` (``x``/``y``
when projected) or a WKT ``geometry`` column.
"""

from __future__ import annotations

import csv
import io as _io
import logging
import re
import unicodedata
import zipfile
from pathlib import Path
from typing import Final

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from layers.atomic import atomic_path
from layers.crs import system_crs
from layers.errors import InputError
from layers.io.files import mixed_utf8, unreadable
from layers.validate import (
    COORD_PAIRS,
    WKT_COLUMNS,
    check_lonlat_columns,
    find_coordinate_columns,
    pick_named,
)

log = logging.getLogger(__name__)

XLSX_MAX_ROWS: Final = 1_048_575


# ------------------------------------------------------------------------------- reading


def _decode(raw: bytes, p: Path, encoding: str | None) -> tuple[str, str]:
    """The file's text: UTF-8 (with or without BOM), else GB18030 (GBK) for the whole file.

    A file that is UTF-8 except for some rows (a row pasted from a GBK file) is an error
    naming the first such row: decoding it all as GB18030 would garble every UTF-8 name, and
    decoding it as UTF-8 with replacement would garble the odd rows, both without a word.
    """
    if encoding is not None:
        try:
            return raw.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            msg = f"cannot decode the text as {encoding} ({type(exc).__name__})"
            raise InputError(
                msg, file=p, fix="pass the right encoding, or leave it out to detect it"
            ) from None
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    bad_row = _csv_mixed_row(raw)
    if bad_row is not None:
        where = "the header" if bad_row == 0 else "this row"
        msg = f"the file is UTF-8 except {where}, which is in another encoding (GBK?)"
        raise InputError(
            msg,
            file=p,
            row=bad_row or None,
            fix="re-save the file as UTF-8 (Excel: 'CSV UTF-8'), or retype that row",
        )
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError:
        msg = "the text is neither UTF-8 nor GBK/GB18030"
        raise InputError(
            msg, file=p, fix="save the table as 'CSV UTF-8' or pass encoding="
        ) from None
    log.info("%s: not UTF-8; decoded as GB18030 (GBK)", p.name)
    return text, "gb18030"


def _csv_mixed_row(raw: bytes) -> int | None:
    """The first data row (1-based; 0 for the header) that breaks an otherwise UTF-8 CSV."""
    text = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="surrogateescape")
    try:
        rows = [r for r in csv.reader(_io.StringIO(text)) if any(c.strip() for c in r)]
        chunks = [",".join(r).encode("utf-8", errors="surrogateescape") for r in rows]
    except csv.Error:
        chunks = [line for line in raw.splitlines() if line.strip()]
    return mixed_utf8(chunks)


def read_csv(p: Path, encoding: str | None) -> tuple[pd.DataFrame, str]:
    """Read a CSV table; a row with more fields than the header is an error naming the row.

    The separator is sniffed from the header (``,`` ``;`` tab or ``|``: European Excel writes
    ``;``, some platforms tabs).  pandas' C parser does the work; only when it rejects the
    layout does the csv module re-read the text to find the offending row (and to accept
    trailing empty cells, which Excel sometimes writes).  The header is read as an ordinary
    row, so pandas never turns surplus leading fields into an index and shifts values into the
    wrong columns; a title row above it is skipped (see :func:`_find_header`).
    """
    text, used = _decode(p.read_bytes(), p, encoding)
    if not text.strip():
        msg = "the file holds no table (only blank text)"
        raise InputError(msg, file=p, fix="export the table again")
    sep = _sniff_separator(text, p)
    try:
        raw = pd.read_csv(
            _io.StringIO(text),
            header=None,
            sep=sep,
            dtype=object,
            keep_default_na=False,
            na_values=[""],
            skipinitialspace=True,
        )
    except pd.errors.ParserError:
        raw = pd.DataFrame(_csv_rows(text, p, sep), dtype=object)
    return _table_body(raw, p), used


_SEPARATORS: Final = (",", ";", "\t", "|")
_SEPARATOR_NAMES: Final = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "'|'"}


def _sniff_separator(text: str, p: Path) -> str:
    """The CSV separator: the one of ``, ; tab |`` that splits the header into most columns.

    :class:`csv.Sniffer` proposes one from the first lines; it is kept only when it splits the
    header line (the first line holding any separator, so a title line is passed over) at
    least as finely as the comma, so ordinary comma files never change reading.
    """
    lines = [ln for ln in text.splitlines()[:_HEADER_SCAN_ROWS] if ln.strip()]
    header = next((ln for ln in lines if any(c in ln for c in _SEPARATORS)), "")
    if not header:
        return ","

    def fields(sep: str) -> int:
        try:
            return len(next(csv.reader([header], delimiter=sep)))
        except (csv.Error, StopIteration):
            return 0

    try:
        sniffed = csv.Sniffer().sniff("\n".join(lines), delimiters="".join(_SEPARATORS)).delimiter
    except csv.Error:
        sniffed = ","
    best = max(_SEPARATORS, key=lambda c: (fields(c), c == ","))
    sep = sniffed if sniffed in _SEPARATORS and fields(sniffed) >= fields(best) else best
    if sep != "," and fields(sep) > 1:
        log.info("%s: columns separated by %s", p.name, _SEPARATOR_NAMES[sep])
        return sep
    return ","


def _csv_rows(text: str, p: Path, sep: str = ",") -> list[list[str | None]]:
    try:
        rows = [
            r
            for r in csv.reader(_io.StringIO(text), delimiter=sep, skipinitialspace=True)
            if any(r)
        ]
    except csv.Error as exc:
        msg = f"is not a well-formed CSV table ({exc})"
        raise InputError(msg, file=p, fix="check the quotes in the file") from None
    head, n_header = _find_header([list(r) for r in rows[: _HEADER_SCAN_ROWS * 5]])
    width = max(len(r) for r in rows[head : head + n_header])
    for number, row in enumerate(rows[head + n_header :], start=1):
        if len(row) > width and any(cell.strip() for cell in row[width:]):
            msg = (
                f"is not a well-formed CSV table: the row has {len(row)} fields "
                f"but the header has {width}"
            )
            raise InputError(
                msg,
                file=p,
                row=number,
                fix=f"check the separators ({_SEPARATOR_NAMES[sep]}) and quotes in that row",
            )
    return [[c.strip() or None for c in (r + [""] * width)[:width]] for r in rows]


def _table_body(raw: pd.DataFrame, p: Path) -> pd.DataFrame:
    """The data rows of a raw CSV/XLSX grid under its header, with typed columns."""
    raw = raw.dropna(how="all").reset_index(drop=True)  # Excel's formatted-but-empty rows
    if raw.empty:
        return pd.DataFrame()
    grid = raw.to_numpy(dtype=object)
    head, n_header = _find_header([list(r) for r in grid[: _HEADER_SCAN_ROWS * 5]])
    if n_header == 2:
        header = _joined_header(list(grid[head]), list(grid[head + 1]))
        log.warning(
            "%s: two-row header (rows %d and %d) joined into column names: %s",
            p.name,
            head + 1,
            head + 2,
            ", ".join(h for h in header if h),
        )
    else:
        header = ["" if _blank(h) else str(h).strip() for h in grid[head]]
    if head:
        log.warning(
            "%s: the header is row %d; the %s above it (%s) skipped as a title",
            p.name,
            head + 1,
            "row" if head == 1 else f"{head} rows",
            " ".join(str(c).strip() for c in grid[0] if not _blank(c))[:60],
        )
    body = raw.iloc[head + n_header :].reset_index(drop=True)
    keep = [bool(h) or body[c].notna().any() for h, c in zip(header, body.columns, strict=True)]
    body = body.loc[:, keep]
    header = [h for h, k in zip(header, keep, strict=True) if k]
    seen: set[str] = set()
    for k, name in enumerate(header):
        if not name:
            header[k] = name = f"column_{k + 1}"
        if name in seen:
            msg = f"column '{name}' appears twice in the header"
            if head or n_header == 2:
                msg += f" (row {head + n_header} of the sheet)"
            raise InputError(msg, file=p, column=name, fix="give every column its own name")
        seen.add(name)
    body.columns = header
    return _infer_types(body, p)


def xlsx_sheets(p: Path) -> list[str]:
    """The sheet names of a workbook."""
    try:
        with pd.ExcelFile(p, engine="openpyxl") as book:
            return [str(s) for s in book.sheet_names]
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise unreadable(p, "XLSX workbook", exc) from None


def choose_sheet(p: Path, sheet: str | None, option: str) -> str:
    """The sheet to read: the one named, else the only sheet (or the only one with data)."""
    sheets = xlsx_sheets(p)
    if sheet is not None:
        return pick_named(p, sheet, list(sheets), noun="sheet", option=option)
    if len(sheets) == 1:
        return sheets[0]
    with pd.ExcelFile(p, engine="openpyxl") as book:
        filled = [s for s in sheets if not pd.read_excel(book, sheet_name=s, nrows=1).empty]
    if len(filled) == 1:
        return filled[0]
    if not filled:
        return sheets[0]  # reported as an empty layer
    msg = f"the workbook has {len(filled)} sheets with data: {', '.join(filled)}"
    raise InputError(msg, file=p, fix=f"choose one with {option}")


def read_xlsx(p: Path, sheet: str) -> pd.DataFrame:
    """Read one sheet as a typed table under its header row(s)."""
    try:
        raw = pd.read_excel(p, sheet_name=sheet, engine="openpyxl", header=None)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise unreadable(p, "XLSX workbook", exc) from None
    return _table_body(raw, p)


# ------------------------------------------------------------------ header rows and numbers

_HEADER_SCAN_ROWS: Final = 10
_WKT_START = re.compile(r"^\s*(multi)?(point|linestring|polygon)\b|^\s*geometrycollection\b", re.I)


def _blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _is_label(value: object) -> bool:
    """Text that can be a column name: not a number (in any office spelling), not WKT."""
    if not isinstance(value, str) or not value.strip():
        return False
    return _office_number(value) is None and not _WKT_START.match(value)


def _header_like(row: list[object], width: int) -> bool:
    cells = [str(c).strip() for c in row if not _blank(c)]
    return (
        len(cells) >= max(2, -(-width // 2))
        and all(_is_label(c) for c in cells)
        and len(set(cells)) == len(cells)
    )


def _find_header(rows: list[list[object]]) -> tuple[int, int]:
    """Where the header is, and whether it spans two rows: ``(row, 1 or 2)``, 0-based.

    Offices put a title above the header (``上城区助餐点名单（2026年）`` in A1) and merge a
    group name over two columns (``人口`` over ``总数 | 60岁以上``).  The header is the first
    row whose non-empty cells are at least half the table's width, all distinct text and no
    numbers; rows above it are titles.  It spans two rows when the next row is text too and
    has a label under an empty cell of the first (what a merged cell leaves).  A table whose
    first row is not header-like (column names such as ``2020``) keeps its first row.
    """
    if not rows:
        return 0, 1
    width = max(sum(not _blank(c) for c in r) for r in rows)
    head = 0
    if not _header_like(rows[0], width):
        for i in range(1, min(len(rows) - 1, _HEADER_SCAN_ROWS)):
            if _header_like(rows[i], width):
                head = i
                break
    if head + 2 < len(rows):
        top, below = rows[head], rows[head + 1]
        labels = [c for c in below if not _blank(c)]
        merged = any(_blank(t) and not _blank(b) for t, b in zip(top, below, strict=False))
        if (
            merged
            and len(labels) >= 2
            and all(_is_label(c) for c in labels)
            and not all(_is_label(c) or _blank(c) for c in rows[head + 2])
        ):
            return head, 2
    return head, 1


def _joined_header(top: list[object], below: list[object]) -> list[str]:
    """Column names of a two-row header: ``人口_60岁以上`` under a merged ``人口``.

    A merged cell leaves its value in the first column only; an empty top cell whose left
    neighbour carries a group name over a label takes that group name.
    """
    names: list[str] = []
    group: str | None = None
    for t, b in zip(top, below, strict=False):
        t_text = None if _blank(t) else str(t).strip()
        b_text = None if _blank(b) else str(b).strip()
        if t_text is not None:
            group = t_text if b_text is not None else None
        elif b_text is not None and group is not None:
            t_text = group
        else:
            group = None
        if t_text and b_text:
            names.append(t_text if t_text == b_text else f"{t_text}_{b_text}")
        else:
            names.append(t_text or b_text or "")
    return names


_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
#: Count units offices write after numbers (``1234人``, ``12 床``); stripped only when a column's
#: numbers all carry the same one.
_COUNT_UNITS: Final = "人户个床张"
_WITH_UNIT = re.compile(rf"^(.*?\d)\s*([{_COUNT_UNITS}])$")
_LEADING_ZERO = re.compile(r"^[+-]?0\d")
_FLOAT_MARK = re.compile(r"[.eEnN]")
_MAX_NUMBER_CHARS = 15


def _office_number(text: str) -> float | None:
    """``text`` as a number in an office spelling (``1,164``, ``１２３４``, ``1234人``) or None."""
    t = unicodedata.normalize("NFKC", text).strip()
    m = _WITH_UNIT.match(t)
    if m:
        t = m.group(1).strip()
    if _THOUSANDS.match(t):
        t = t.replace(",", "")
    try:
        return float(t)
    except ValueError:
        return None


def _number_texts(text: list[str]) -> tuple[list[str], list[str]]:
    """Office spellings of numbers made plain, and what was changed (for the log).

    Full-width digits become ASCII (NFKC), thousands separators go when every comma in the
    column sits in one (``30,27`` would be a decimal comma: left alone), and a count unit goes
    when every number of the column carries the same one.
    """
    norm = [unicodedata.normalize("NFKC", t).strip() for t in text]
    notes = []
    if norm != text:
        notes.append("full-width digits")
    units = [_WITH_UNIT.match(t) for t in norm]
    found = {m.group(2) for m in units if m}
    if len(found) == 1 and all(units):
        norm = [m.group(1).strip() for m in units if m]
        notes.append(f"unit '{found.pop()}' removed")
    commas = [t for t in norm if "," in t]
    if commas and all(_THOUSANDS.match(t) for t in commas):
        norm = [t.replace(",", "") for t in norm]
        notes.append("thousands separators")
    return norm, notes


def _infer_types(frame: pd.DataFrame, p: Path | None = None) -> pd.DataFrame:
    """Numbers from text columns, keeping codes as text.

    Integers stay integers unless a value is written with a decimal point, so ``1.0`` comes
    back as a float and ``1`` as an integer, as written.  Codes with leading zeros (``001``)
    and digit strings longer than 15 characters (ID numbers a float would round) stay text.
    Text is stripped of surrounding spaces.  Numbers written as offices write them (``1,164``,
    ``１２３４``, ``1234人`` down a whole column) are read as numbers, and the log says so; cells
    that are numbers already (XLSX) are kept as they are.
    """
    out: dict[str, object] = {}
    for col in frame.columns:
        values = frame[col].to_numpy(dtype=object)
        mask = ~pd.isna(values)
        if not mask.any():
            out[col] = np.full(len(values), np.nan)
            continue
        present = values[mask]
        is_text = np.array([isinstance(v, str) for v in present])
        is_number = np.array(
            [isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in present]
        )
        if not (is_text | is_number).all():
            out[col] = frame[col]  # dates, booleans from a workbook: as read
            continue
        raw_text = [str(v).strip() for v in present[is_text]]
        plain, notes = _number_texts(raw_text)
        num_text = pd.to_numeric(np.asarray(plain, dtype=object), errors="coerce")
        numeric = (
            not np.isnan(np.asarray(num_text, dtype=np.float64)).any()
            and not any(_LEADING_ZERO.match(t) for t in plain)
            and max(map(len, plain), default=0) <= _MAX_NUMBER_CHARS
        )
        if numeric:
            num = np.empty(len(present), dtype=np.float64)
            num[is_text] = num_text
            num[is_number] = present[is_number].astype(np.float64)
            whole = not any(_FLOAT_MARK.search(t) for t in plain) and all(
                float(v).is_integer() for v in present[is_number]
            )
            if notes and p is not None:
                log.info("%s: column '%s' read as numbers (%s)", p.name, col, ", ".join(notes))
            if mask.all() and whole:
                out[col] = num.astype(np.int64)
            else:
                full = np.full(len(values), np.nan)
                full[mask] = num
                out[col] = full
        elif mask.all() and is_text.all() and {t.lower() for t in raw_text} <= {"true", "false"}:
            out[col] = np.array([t.lower() == "true" for t in raw_text])
        else:
            stripped = values.copy()
            stripped[mask] = [str(v).strip() if isinstance(v, str) else v for v in present]
            stripped[~mask] = None
            out[col] = pd.Series(stripped, index=frame.index, dtype=object)
    return pd.DataFrame(out, index=frame.index)


def frame_to_gdf(frame: pd.DataFrame, p: Path, system: str | CRS | None) -> gpd.GeoDataFrame:
    """Points from coordinate columns, or shapes from a WKT column, checked row by row."""
    pair = find_coordinate_columns(frame.columns, file=p)
    crs = system_crs(system) if system is not None else CRS.from_epsg(4326)
    if pair is None:
        wkt_col = next(c for c in frame.columns if str(c).strip().lower() in WKT_COLUMNS)
        text = frame[wkt_col]
        geoms = shapely.from_wkt(text.where(text.notna(), None).to_numpy(), on_invalid="ignore")
        bad = np.flatnonzero(shapely.is_missing(geoms) & text.notna().to_numpy())
        if bad.size:
            first = int(bad[0])
            msg = f"not valid WKT: {str(text.iloc[first])[:40]!r}"
            raise InputError(
                msg,
                file=p,
                row=first + 1,
                column=str(wkt_col),
                fix="write e.g. POINT (120.15 30.27)",
            )
        return gpd.GeoDataFrame(frame.drop(columns=[wkt_col]), geometry=geoms, crs=crs)
    lon_col, lat_col = pair
    lon, lat = check_lonlat_columns(frame, lon_col, lat_col, system, file=p)
    attrs = frame.drop(columns=[lon_col, lat_col])
    return gpd.GeoDataFrame(attrs, geometry=shapely.points(lon, lat), crs=crs)


# ------------------------------------------------------------------------------- writing


def write_sheet(
    out: gpd.GeoDataFrame, p: Path, system: str | CRS, *, sheet: str | None, force: bool
) -> None:
    """Write a CSV (``sheet`` None; UTF-8 with BOM, as Excel opens it) or an XLSX sheet."""
    table = _to_table(out, system)
    with atomic_path(p, force=force) as tmp:
        if sheet is None:
            table.to_csv(tmp, index=False, encoding="utf-8-sig")
        else:
            if len(table) > XLSX_MAX_ROWS:
                msg = f"{len(table)} rows do not fit in an Excel sheet"
                raise InputError(msg, file=p, fix="write CSV, GeoPackage or GeoParquet")
            table.to_excel(tmp, index=False, sheet_name=sheet, engine="openpyxl")


def sheet_name(name: str) -> str:
    """``name`` as Excel accepts a sheet name: at most 31 characters, no brackets or slashes."""
    cleaned = re.sub(r"[\[\]:*?/\\]", "_", name)[:31]
    return cleaned or "data"


def _to_table(out: gpd.GeoDataFrame, system: str | CRS) -> pd.DataFrame:
    geoms = np.asarray(out.geometry.array)
    attrs = pd.DataFrame(out.drop(columns=out.geometry.name))
    lower = {str(c).strip().lower() for c in attrs.columns}
    points = len(geoms) > 0 and bool((shapely.get_type_id(geoms) == 0).all())
    clash = any(a in lower or b in lower for a, b in COORD_PAIRS) or bool(lower & set(WKT_COLUMNS))
    if points and not clash:
        projected = isinstance(system, CRS) and not system.is_geographic
        xname, yname = ("x", "y") if projected else ("lon", "lat")
        table = attrs.copy()
        table[xname] = shapely.get_x(geoms)
        table[yname] = shapely.get_y(geoms)
        return table
    table = attrs.copy()
    table["geometry"] = shapely.to_wkt(geoms, rounding_precision=-1)
    return table
