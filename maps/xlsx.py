"""The report's workbook: one sheet per report table, raw values with Excel number formats.

Written from the same :class:`~maps.report_tables.Table` objects as the HTML page, so the two
hold the same rows.  Cells keep the exact values of the result (a rate is ``0.8534`` shown as
``85.3%`` by its number format, not the text "85.3%"), except coded words (target status, units
met), which are stored as the words shown.  Text is never a formula: a 街道 named
``=HYPERLINK(...)`` is stored as text (see :func:`_as_text_cell`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from layers.atomic import atomic_path
from maps.report_tables import FORMATS, XLSX_SHOWN, Column, Table, clean_value


def _xlsx_value(value: Any) -> Any:
    """A cell value openpyxl can store: NaN and inf (not representable in XLSX) become empty."""
    value = clean_value(value)
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def xlsx_cell(rec: Mapping[str, Any], col: Column, lang: str) -> Any:
    """What the workbook stores for a cell.

    The raw value; words for coded fields (status, units met); empty for fields the row's
    measure does not define (a dash in the HTML).
    """
    fmt = col.fmt_of(rec)
    if fmt == "na":
        return None
    if fmt in XLSX_SHOWN:
        raw = clean_value(rec[col.key])
        return FORMATS[fmt][0](raw, lang) if raw not in ("", None) else None
    return _xlsx_value(rec[col.key])


def _as_text_cell(cell: Any) -> None:
    """Store text as text: a 街道 named ``=HYPERLINK(...)`` must never become a live formula.

    openpyxl turns any string starting with ``=`` into a formula that Excel or WPS would run when
    a leader opens the workbook; every text in the report comes from data, never a formula.
    """
    if isinstance(cell.value, str):
        cell.data_type = "s"


def write_xlsx(
    tables: Sequence[Table], path: str | Path, *, lang: str = "zh", force: bool = False
) -> Path:
    """Write report tables to a workbook: one sheet per table, raw values, number formats."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    used: set[str] = set()
    for table in tables:
        name = table.sheet
        i = 2
        while name.lower() in used:
            suffix = f" {i}"
            name = table.sheet[: 31 - len(suffix)] + suffix
            i += 1
        used.add(name.lower())
        ws = wb.create_sheet(title=name)
        ws.append([c.label for c in table.columns])
        for cell in ws[1]:
            cell.font = Font(bold=True)
        records = table.rows.to_dict("records")
        for rec in records:
            ws.append([xlsx_cell(rec, c, lang) for c in table.columns])
            for cell in ws[ws.max_row]:
                _as_text_cell(cell)
        for j, col in enumerate(table.columns, start=1):
            letter = get_column_letter(j)
            for rec, (cell,) in zip(
                records, ws.iter_rows(min_row=2, min_col=j, max_col=j), strict=True
            ):
                fmt = FORMATS[col.fmt_of(rec)][1]
                if fmt:
                    cell.number_format = fmt
            width = max(
                [len(col.label) * (2 if lang == "zh" else 1)]
                + [len(str(r)) for r in table.rows[col.key]]
                + [8]
            )
            ws.column_dimensions[letter].width = min(width + 2, 60)
        ws.freeze_panes = "A2"
    with atomic_path(path, force=force) as tmp:
        wb.save(tmp)
    return Path(path)
