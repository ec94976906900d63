"""The gap report for district leaders: one printable self-contained HTML file, plus XLSX.

Leaders read it on paper (A4) or on an intranet PC, in Chinese by default.  It answers, in this
order: whether the district's written planning targets are met (when the plan has targets: the
report opens with them, since leaders are measured against them); how far each layer is from the
15-minute goal; which 街道 (and 社区) lag; where the worst gaps are and how many people they hold;
what the suggested sites would change; how evenly service is spread; and how the figures were
made (speeds, thresholds, data sources).

The report renders the :class:`~coverage.result.StudyResult` and computes nothing.  The work is
split by job:

- :mod:`maps.report_tables` declares the tables (rows, columns, formats) shared by page and
  workbook;
- this module turns them into view data (cells with their shown text and exact value) and fills
  the jinja2 templates in ``maps/templates`` (``report.html.j2`` and its partials), loaded from
  the package folder with autoescape on: every name from the data is escaped, none is marked
  safe; the only markup passed in is the SVG the chart module drew;
- :mod:`maps.xlsx` writes the workbook.

Every HTML cell keeps the exact value it shows in ``data-value`` (Python ``repr`` of floats,
``nan``/``inf`` spelled out), so a reader program (and the tests) can check the report against
the analysis digit for digit.  Every word comes from the :mod:`maps.i18n` catalogue.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import jinja2
from markupsafe import Markup

from coverage.result import StudyResult
from layers.atomic import atomic_path, check_target
from maps import charts, i18n
from maps.i18n import text
from maps.report_tables import (
    FORMATS,
    LOW_RATE,
    TEXT_FORMATS,
    WORST_GAPS,
    WORST_UNITS,
    Column,
    Table,
    clean_value,
    raw_value,
    report_tables,
)
from maps.xlsx import write_xlsx, xlsx_cell

__all__ = [
    "FORMATS",
    "WORST_GAPS",
    "WORST_UNITS",
    "Column",
    "ReportFiles",
    "Table",
    "conclusions",
    "raw_value",
    "render_report_html",
    "report_tables",
    "write_report",
    "write_xlsx",
    "xlsx_cell",
]

log = logging.getLogger(__name__)

TEMPLATES: Final = Path(__file__).parent / "templates"
_ZH_NUMERALS: Final = "零一二三四五六七八九十"
_COLOUR_RE: Final = re.compile(r"^#[0-9a-fA-F]{3,8}$")


@functools.cache
def _env() -> jinja2.Environment:
    """The templates, from the package folder only (no network), autoescaped."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


# --------------------------------------------------------------------------------------------
# View data: what the templates lay out
# --------------------------------------------------------------------------------------------


def _table_view(table: Table, lang: str) -> dict[str, Any]:
    """A table as the template needs it: header cells, and rows of (class, value, text) cells.

    Group heading rows start each run of rows with the same ``group_by`` value; a detail row
    (the reason a target cannot be met) follows its row when it has text.
    """
    columns = table.html_columns()
    rows: list[dict[str, Any]] = []
    group: object = None
    for n, rec in enumerate(table.rows.to_dict("records")):
        if table.group_key is not None:
            by = rec[table.group_by or table.group_key]
            if n == 0 or by != group:
                group = by
                rows.append({"kind": "group", "heading": rec[table.group_key]})
        cells = []
        for col in columns:
            value = clean_value(rec[col.key])
            fmt = col.fmt_of(rec)
            cls = "txt" if fmt in TEXT_FORMATS else "num"
            low = isinstance(value, float) and math.isfinite(value) and value < LOW_RATE
            if table.flag_low and fmt == "percent" and low:
                cls += " low"
            if fmt == "status":
                cls += " met" if value == "met" else " unmet"
            elif fmt == "units":
                cls += " units"
            cells.append(
                {
                    "key": col.key,
                    "cls": cls,
                    "value": raw_value(value),
                    "text": FORMATS[fmt][0](value, lang),
                }
            )
        attrs = [(k, raw_value(rec[k])) for k in table.ids]
        rows.append({"kind": "row", "attrs": attrs, "cells": cells})
        if table.detail_key is not None:
            detail = raw_value(rec[table.detail_key])
            if detail and detail != "nan":
                value_key = table.detail_value_key or table.detail_key
                rows.append(
                    {
                        "kind": "detail",
                        "key": value_key,
                        "value": raw_value(rec[value_key]),
                        "title": next(c.label for c in table.columns if c.key == table.detail_key),
                        "text": detail,
                    }
                )
    return {
        "key": table.key,
        "title": table.title,
        "note": table.note,
        "targets": table.key.startswith("target"),
        "span": len(columns),
        "columns": [
            {"key": c.key, "label": c.label, "cls": "txt" if c.fmt in TEXT_FORMATS else "num"}
            for c in columns
        ],
        "rows": rows,
    }


def conclusions(result: StudyResult, lang: str) -> list[str]:
    """One sentence per layer a leader can repeat: the rate, the worst 街道, what new sites add.

    Built from the same tables as the rest of the report (headline metrics, the per-街道 rows at
    the goal minutes, the suggestion runs), so the sentence can never disagree with them.
    """
    sep, end = ("；", "。") if lang == "zh" else ("; ", ".")
    out = []
    m = result.metrics
    for kind, spec in result.specs.items():
        at = m[(m["kind"] == kind) & (m["minutes"] == spec.headline_min)]
        district = at[at["level"] == "district"]
        label = spec.label(lang)
        rate = float(district["coverage_rate"].iloc[0]) if len(district) else math.nan
        if not math.isfinite(rate):
            out.append(text("concl_no_people", lang, label=label) + end)
            continue
        parts = [
            text(
                "concl_rate",
                lang,
                group=i18n.target_group_label(spec.target_group, lang),
                rate=i18n.fmt_percent(rate),
                m=f"{spec.headline_min:g}",
                label=label,
            )
        ]
        streets = at[(at["level"] == "street") & at["coverage_rate"].notna()]
        if len(streets) > 1:
            worst = streets.sort_values(["coverage_rate", "area"]).iloc[0]
            if float(worst["coverage_rate"]) < 1.0:
                parts.append(
                    text(
                        "concl_worst",
                        lang,
                        area=worst["area"],
                        rate=i18n.fmt_percent(float(worst["coverage_rate"])),
                    )
                )
            else:
                parts.append(text("concl_all_full", lang))
        run = result.suggestion_runs.get(kind)
        n_sites = int((result.suggestions["kind"] == kind).sum()) if run is not None else 0
        if run is not None and n_sites and math.isfinite(run.coverage_rate_after):
            parts.append(
                text("concl_after", lang, n=n_sites, rate=i18n.fmt_percent(run.coverage_rate_after))
            )
        off = len(result.unsnapped_facilities(kind))
        if off:
            parts.append(text("concl_off", lang, n=off))
        out.append(sep.join(parts) + end)
    return out


def _cards(result: StudyResult, lang: str) -> list[dict[str, Any]]:
    """One headline card per layer: the district rate at the goal minutes."""
    cards = []
    m = result.metrics
    for kind, spec in result.specs.items():
        sel = m[
            (m["kind"] == kind) & (m["level"] == "district") & (m["minutes"] == spec.headline_min)
        ]
        if sel.empty:
            continue
        r = sel.iloc[0]
        rate = float(r["coverage_rate"])
        width = 0.0 if not math.isfinite(rate) else max(0.0, min(rate, 1.0)) * 100
        head = f"{spec.headline_min:g}"
        cards.append(
            {
                "kind": kind,
                "colour": _colour(spec.colour),
                "label": spec.label(lang),
                "value": raw_value(rate),
                "rate": i18n.fmt_percent(rate),
                "width": f"{width:.1f}",
                "caption": text(
                    "headline_card",
                    lang,
                    covered=i18n.fmt_people(float(r["covered_population"])),
                    population=i18n.fmt_people(float(r["population"])),
                    group=i18n.target_group_label(spec.target_group, lang),
                    m=head,
                ),
                "goal": text("goal", lang, m=head),
            }
        )
    return cards


def _colour(colour: str) -> str:
    return colour if _COLOUR_RE.match(colour or "") else "#555555"


def _numeral(lang: str, n: int) -> str:
    """A section number: 一、 in Chinese, ``1. `` in English."""
    return f"{_ZH_NUMERALS[n]}、" if lang == "zh" else f"{n}. "


def render_report_html(
    result: StudyResult, *, lang: str = "zh", tables: Sequence[Table] | None = None
) -> str:
    """The report page as one HTML string (no external resource of any kind)."""
    i18n.check_lang(lang)
    tables = list(tables) if tables is not None else report_tables(result, lang=lang)
    figures = {
        # the SVG markup matplotlib wrote (its texts escaped by it): the only markup passed in
        c.key: {"svg": Markup(c.svg)}
        for c in charts.report_charts(result, lang=lang)
    }
    template = _env().get_template("report.html.j2")
    return template.render(
        t=functools.partial(text, lang=lang),
        numeral=functools.partial(_numeral, lang),
        html_lang="zh-CN" if lang == "zh" else "en",
        title=result.title,
        synthetic=result.synthetic,
        banner=i18n.SYNTHETIC_BANNER,
        conclusions=conclusions(result, lang),
        cards=_cards(result, lang),
        tables={t.key: _table_view(t, lang) for t in tables},
        figures=figures,
    )


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote."""

    html: Path
    xlsx: Path | None = None
    tables: tuple[str, ...] = field(default=())


def write_report(
    result: StudyResult,
    path_html: str | Path,
    *,
    lang: str = "zh",
    xlsx_path: str | Path | None = None,
    force: bool = False,
) -> ReportFiles:
    """Write the gap report (HTML, and the same tables as XLSX when ``xlsx_path`` is given).

    Parameters
    ----------
    result
        The analysis result; only its tables are read.
    path_html
        The HTML file (self-contained, printable on A4).
    lang
        ``"zh"`` (default) or ``"en"``.
    xlsx_path
        Optional workbook with one sheet per report table (Chinese sheet names for ``zh``).
    force
        Overwrite existing files.

    Raises
    ------
    InputError
        Unknown ``lang``, or an output exists without ``force`` (checked for both files before
        either is written).
    """
    i18n.check_lang(lang)
    check_target(path_html, force=force)
    if xlsx_path is not None:
        check_target(xlsx_path, force=force)
    tables = report_tables(result, lang=lang)
    page = render_report_html(result, lang=lang, tables=tables)
    with atomic_path(path_html, force=force) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log.info("report written: %s (%.0f kB)", path_html, len(page.encode("utf-8")) / 1e3)
    xlsx = None
    if xlsx_path is not None:
        xlsx = write_xlsx(tables, xlsx_path, lang=lang, force=force)
        log.info("report tables written: %s", xlsx)
    return ReportFiles(html=Path(path_html), xlsx=xlsx, tables=tuple(t.key for t in tables))
