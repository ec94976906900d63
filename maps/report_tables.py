"""The report's tables, declared once and shared by the HTML page and the workbook.

:func:`report_tables` selects and orders the :class:`~coverage.result.StudyResult` rows and names
each shown column with its header and its format (:class:`Column`); it computes nothing.  The
HTML templates (:mod:`maps.report`) and the XLSX writer (:mod:`maps.xlsx`) both walk these same
:class:`Table` objects, so the two cannot disagree.  ``rows`` keep the exact values of the
result (no rounding); :data:`FORMATS` says how each format reads (:mod:`maps.i18n` numbers) and
which Excel number format it gets.  Every word comes from the :mod:`maps.i18n` catalogue.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from coverage.result import StudyResult, SuggestionRun
from coverage.schema import (
    EQUITY_COLUMNS,
    FACILITY_COLUMNS,
    GAP_COLUMNS,
    METRIC_COLUMNS,
    SUGGESTION_COLUMNS,
)
from maps import i18n
from maps.i18n import text

#: Gap zones listed per layer (the GIS export holds all of them).
WORST_GAPS: Final = 10
#: Coverage rates below this are printed in red in the tables at the goal minutes.
LOW_RATE: Final = 0.5

#: How a column's values are shown (HTML) and number-formatted (XLSX).
FORMATS: Final[dict[str, tuple[Callable[[Any, str], str], str | None]]] = {
    "text": (
        lambda v, _l: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v),
        None,
    ),
    "percent": (lambda v, _l: i18n.fmt_percent(_num(v)), "0.0%"),
    "people": (lambda v, _l: i18n.fmt_people(_num(v)), "#,##0"),
    "count": (lambda v, _l: i18n.fmt_count(_num(v)), "#,##0"),
    "minutes": (lambda v, lang: i18n.fmt_minutes(_num(v), lang), "0.0"),
    "number0": (lambda v, _l: i18n.fmt_number(_num(v), 0), "#,##0"),
    "threshold": (lambda v, _l: i18n.fmt_threshold(_num(v)), "General"),
    "number1": (lambda v, _l: i18n.fmt_number(_num(v), 1), "0.0"),
    "number2": (lambda v, _l: i18n.fmt_number(_num(v), 2), "0.00"),
    "number3": (lambda v, _l: i18n.fmt_number(_num(v), 3), "0.000"),
    "bool": (lambda v, lang: i18n.fmt_bool(v, lang), None),
    "status": (lambda v, lang: i18n.status_label(v, lang), None),
    "units": (lambda v, lang: i18n.fmt_units_met(v, lang), None),
    "na": (lambda _v, _l: i18n.DASH, None),  # a field the row's measure does not define
}
#: Formats whose cells hold words: the workbook stores the shown text, not the code behind it.
XLSX_SHOWN: Final = frozenset({"status", "units"})
#: Formats shown as text cells (left-aligned) rather than numbers.
TEXT_FORMATS: Final = frozenset({"text", "bool", "status", "units"})
#: Gaps in a target's units listed in the report (all of them are in target_units exports).
WORST_UNITS: Final = 5


def _num(value: Any) -> float | None:
    if value is None or value is pd.NA:
        return None
    return float(value)


@dataclass(frozen=True)
class Column:
    """A shown column: ``key`` in :attr:`Table.rows`, its header and its format name.

    ``fmt_key`` names a column of the rows holding the format of each row's cell, for columns
    whose rows differ in kind (a target's value is a count of facilities or a share).
    """

    key: str
    label: str
    fmt: str = "text"
    fmt_key: str | None = None

    def fmt_of(self, rec: Mapping[str, Any]) -> str:
        """The format of this column's cell in row ``rec``."""
        if self.fmt_key is None:
            return self.fmt
        fmt = rec.get(self.fmt_key)
        return fmt if isinstance(fmt, str) and fmt in FORMATS else self.fmt


@dataclass(frozen=True)
class Table:
    """One report table, shared by the HTML and the workbook.

    ``rows`` holds the raw values exactly as in the result (no rounding); ``ids`` name columns
    of ``rows`` that identify a row (``kind``, ``area``...) and go into ``data-*`` attributes
    rather than cells.
    """

    key: str
    title: str
    sheet: str
    columns: tuple[Column, ...]
    rows: pd.DataFrame
    ids: tuple[str, ...] = ()
    note: str = ""
    flag_low: bool = False  # mark rates below 50% (tables at the goal minutes)
    #: HTML only: a heading row starts each run of rows with the same value of this column,
    #: which is then not repeated in the rows (the workbook keeps it as an ordinary column).
    group_key: str | None = None
    #: The column whose change starts a new group (default: ``group_key``), so that two groups
    #: with the same heading stay apart.
    group_by: str | None = None
    #: HTML only: this text column goes into a full-width row under its row when not empty.
    detail_key: str | None = None
    #: HTML only: the column whose exact value the detail row keeps in ``data-value`` (default:
    #: ``detail_key``), e.g. the coded reason behind its sentence.
    detail_value_key: str | None = None

    def display(self, lang: str) -> list[list[str]]:
        """The shown text of every cell, row by row."""
        out = []
        for rec in self.rows.to_dict("records"):
            out.append(
                [FORMATS[c.fmt_of(rec)][0](clean_value(rec[c.key]), lang) for c in self.columns]
            )
        return out

    def html_columns(self) -> tuple[Column, ...]:
        """The columns shown as cells of the HTML rows."""
        return tuple(c for c in self.columns if c.key not in (self.group_key, self.detail_key))


def clean_value(value: Any) -> Any:
    """Turn numpy scalars into Python scalars (so repr() and openpyxl see plain values)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _frame(records: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(list(records), columns=list(columns))


def _target_tables(result: StudyResult, lang: str) -> list[Table]:
    """The planning-target table and the worst units of each target not met."""
    targets = result.targets
    if targets is None or targets.empty:
        return []
    rows = []
    for i, r in enumerate(targets.to_dict("records")):
        spec = result.specs.get(str(r["layer"]))
        count = r["measure"] == "facility_count"
        rows.append(
            {
                **r,
                "target": i,
                "layer_label": spec.label(lang) if spec else str(r["layer"]),
                "scope_label": i18n.scope_label(str(r["scope"]), lang),
                "measure_label": i18n.measure_label(str(r["measure"]), lang),
                "units": ""
                if r["scope"] == "district"
                else f"{int(r['units_met'])}/{int(r['units_total'])}",
                "value_fmt": i18n.target_value_format(str(r["measure"])),
                "pop_fmt": "na" if count else "people",
                "sites_fmt": "count" if count else "na",
                # the coded reason (coverage.targets.Unreachable) in the reader's words
                "reason_text": i18n.target_reason(r.get("reason"), str(r["label"]), lang),
            }
        )
    table = _table(
        "targets",
        lang,
        title_n=len(rows),
        columns=(
            Column("label", text("target", lang)),
            Column("layer_label", text("layer", lang)),
            Column("scope_label", text("scope", lang)),
            Column("measure_label", text("measure", lang)),
            Column("minutes", text("minutes_short", lang), "threshold"),
            Column("threshold", text("target_threshold", lang), "percent", fmt_key="value_fmt"),
            Column("status", text("target_status", lang), "status"),
            Column("value", text("target_value", lang), "percent", fmt_key="value_fmt"),
            Column("units", text("units_met_col", lang), "units"),
            Column(
                "shortfall_population",
                text("shortfall_population", lang),
                "people",
                fmt_key="pop_fmt",
            ),
            Column("shortfall_sites", text("shortfall_sites", lang), "count", fmt_key="sites_fmt"),
            Column("sites_needed", text("sites_needed", lang), "count"),
            Column("reason_text", text("reason", lang)),  # under its row in the HTML
        ),
        rows=_frame(rows, [*targets.columns, *(k for k in rows[0] if k not in targets)]),
        ids=("target", "layer", "scope", "measure"),
        note=text("note_targets", lang),
        detail_key="reason_text",
        detail_value_key="reason",
    )
    by_target = {row["target"]: row for row in rows}
    units = result.target_units
    worst = []
    if units is not None and not units.empty:
        for i, row in by_target.items():
            if row["status"] == "met" or row["scope"] not in ("street", "community"):
                continue
            part = units[(units["target"] == i) & ~units["met"].astype(bool)].head(WORST_UNITS)
            for rank, u in enumerate(part.to_dict("records"), start=1):
                worst.append(
                    {
                        **u,
                        "rank": rank,
                        "threshold": row["threshold"],
                        "value_fmt": row["value_fmt"],
                        "pop_fmt": row["pop_fmt"],
                        "sites_fmt": row["sites_fmt"],
                    }
                )
    shortfalls = []  # only the kinds of shortfall the listed targets define
    if any(w["pop_fmt"] != "na" for w in worst):
        shortfalls.append(
            Column(
                "shortfall_population",
                text("shortfall_population", lang),
                "people",
                fmt_key="pop_fmt",
            )
        )
    if any(w["sites_fmt"] != "na" for w in worst):
        shortfalls.append(
            Column("shortfall_sites", text("shortfall_sites", lang), "count", fmt_key="sites_fmt")
        )
    unit_table = _table(
        "target_units",
        lang,
        title_n=WORST_UNITS,
        columns=(
            Column("label", text("target", lang)),
            Column("rank", text("unit_rank", lang), "count"),
            Column("unit", text("unit", lang)),
            Column("value", text("target_value", lang), "percent", fmt_key="value_fmt"),
            Column("threshold", text("target_threshold", lang), "percent", fmt_key="value_fmt"),
            *shortfalls,
        ),
        rows=_frame(
            worst,
            [
                "target",
                "label",
                "rank",
                "unit",
                "value",
                "threshold",
                "shortfall_population",
                "shortfall_sites",
                "value_fmt",
                "pop_fmt",
                "sites_fmt",
            ],
        ),
        ids=("target", "unit"),
        note=text("note_target_units", lang),
        group_key="label",
        group_by="target",
    )
    return [table, unit_table] if worst else [table]


def _headline_tables(result: StudyResult, lang: str) -> list[Table]:
    m = result.metrics
    head_rows = []
    thr_rows = []
    for kind, spec in result.specs.items():
        district = m[(m["kind"] == kind) & (m["level"] == "district")].sort_values("minutes")
        for r in district.to_dict("records"):
            row = {"kind": kind, "layer": spec.label(lang), **r}
            thr_rows.append(row)
            if r["minutes"] == spec.headline_min:
                head_rows.append({**row, "group": i18n.target_group_label(spec.target_group, lang)})
    common = _coverage_columns(lang)
    headline = _table(
        "headline",
        lang,
        columns=(
            Column("layer", text("layer", lang)),
            Column("group", text("target_group", lang)),
            Column("minutes", text("headline_min", lang), "threshold"),
            *_coverage_columns(lang, minutes=True),
            Column("unsnapped", text("units_unsnapped", lang), "count"),
            Column("unreachable", text("units_unreachable", lang), "count"),
        ),
        rows=_frame(head_rows, [*_METRIC_COLS, "layer", "group"]),
        ids=("kind",),
        flag_low=True,
    )
    thresholds = _table(
        "thresholds",
        lang,
        columns=(
            Column("layer", text("layer", lang)),
            Column("minutes", text("minutes", lang), "threshold"),
            *common,
        ),
        rows=_frame(thr_rows, [*_METRIC_COLS, "layer"]),
        ids=("kind",),
    )
    return [headline, thresholds]


_METRIC_COLS: Final = METRIC_COLUMNS  # the metrics schema, defined once


def _area_order(result: StudyResult, level: str) -> list[str]:
    """Areas of ``level`` in the order of the areas table, then any only found in metrics."""
    names = (
        list(result.areas.loc[result.areas["level"] == level, "area"])
        if not result.areas.empty
        else []
    )
    m = result.metrics
    names += [a for a in m.loc[m["level"] == level, "area"] if a not in names]
    return list(dict.fromkeys(names))


def _level_rows(result: StudyResult, level: str, lang: str) -> list[dict[str, Any]]:
    m = result.metrics
    at_level = m[m["level"] == level]
    rows = []
    for area in _area_order(result, level):
        for kind, spec in result.specs.items():
            sel = at_level[
                (at_level["area"] == area)
                & (at_level["kind"] == kind)
                & (at_level["minutes"] == spec.headline_min)
            ]
            for r in sel.to_dict("records"):
                rows.append({**r, "layer": spec.label(lang)})
    return rows


def _street_tables(result: StudyResult, lang: str) -> list[Table]:
    detail_rows = _level_rows(result, "street", lang)
    if not detail_rows:
        return []
    wide: dict[str, dict[str, Any]] = {}
    for r in detail_rows:
        wide.setdefault(r["area"], {"area": r["area"]})[f"rate_{r['kind']}"] = r["coverage_rate"]
    rate_cols = [f"rate_{k}" for k in result.specs]
    matrix = _table(
        "streets",
        lang,
        columns=(
            Column("area", text("area", lang)),
            *(Column(f"rate_{k}", s.label(lang), "percent") for k, s in result.specs.items()),
        ),
        rows=_frame(list(wide.values()), ["area", *rate_cols]),
        ids=("area",),
        flag_low=True,
    )
    detail = _table(
        "street_detail",
        lang,
        columns=(
            Column("area", text("area", lang)),
            Column("layer", text("layer", lang)),
            *_coverage_columns(lang, minutes=True),
        ),
        rows=_frame(detail_rows, [*_METRIC_COLS, "layer"]),
        ids=("kind", "area"),
        flag_low=True,
    )
    return [matrix, detail]


def _community_table(result: StudyResult, lang: str) -> list[Table]:
    rows = _level_rows(result, "community", lang)
    if not rows:
        return []
    areas = result.areas
    parent = (
        dict(
            zip(
                areas.loc[areas["level"] == "community", "area"],
                areas.loc[areas["level"] == "community", "parent"],
                strict=True,
            )
        )
        if not areas.empty
        else {}
    )
    for r in rows:
        r["parent"] = parent.get(r["area"], "")
    return [
        _table(
            "communities",
            lang,
            columns=(
                Column("area", text("community", lang)),
                Column("parent", text("area", lang)),
                Column("layer", text("layer", lang)),
                *_coverage_columns(lang),
            ),
            rows=_frame(rows, [*_METRIC_COLS, "layer", "parent"]),
            ids=("kind", "area"),
            flag_low=True,
        )
    ]


def _gap_table(result: StudyResult, lang: str) -> Table:
    rows = []
    fac = result.facilities
    keys = zip(fac["kind"], fac["facility_id"], strict=True)
    names = dict(zip(keys, fac["name"], strict=True))
    for kind, spec in result.specs.items():
        g = result.gaps[result.gaps["kind"] == kind].sort_values("gap_id").head(WORST_GAPS)
        for r in g.drop(columns=g.geometry.name).to_dict("records"):
            # readers know a facility by its name; the id stays in the GIS export
            name = names.get((kind, r["nearest_facility"])) or r["nearest_facility"]
            rows.append({**r, "layer": spec.label(lang), "nearest_name": name})
    cols = [*GAP_COLUMNS, "layer", "nearest_name"]
    return _table(
        "gaps",
        lang,
        title_n=WORST_GAPS,
        columns=(
            Column("layer", text("layer", lang)),
            Column("gap_id", text("gap_rank", lang), "count"),
            Column("area", text("area", lang)),
            Column("uncovered_population", text("uncovered_population", lang), "people"),
            Column("residents", text("resident_units", lang), "count"),
            Column("area_km2", text("area_km2", lang), "number2"),
            Column("nearest_name", text("nearest_facility", lang)),
            Column("nearest_facility_minutes", text("nearest_minutes", lang), "minutes"),
        ),
        rows=_frame(rows, cols),
        ids=("kind",),
    )


def _run_status(run: SuggestionRun, lang: str) -> str:
    """The solver's verdict in the reader's language, from the run's fields (not its log line)."""
    if run.optimal:
        return text("status_optimal", lang)
    if math.isfinite(run.gap):
        return text("status_gap", lang, gap=i18n.fmt_percent(run.gap))
    return text("status_unproven", lang)


def _suggestion_tables(result: StudyResult, lang: str) -> list[Table]:
    runs = []
    for kind, run in result.suggestion_runs.items():
        spec = result.specs.get(kind)
        sites = run.curve[-1][0] if run.curve else int((result.suggestions["kind"] == kind).sum())
        runs.append(
            {
                "kind": kind,
                "layer": spec.label(lang) if spec else kind,
                "model": i18n.model_label(run.model, lang),
                "sites": sites,
                "coverage_rate_before": run.coverage_rate_before,
                "coverage_rate_after": run.coverage_rate_after,
                "optimal": run.optimal,
                "gap": run.gap,
                "status": _run_status(run, lang),
                "unreachable_population": run.unreachable_population,
            }
        )
    runs_table = _table(
        "runs",
        lang,
        columns=(
            Column("layer", text("layer", lang)),
            Column("model", text("model", lang)),
            Column("sites", text("sites", lang), "count"),
            Column("coverage_rate_before", text("coverage_before", lang), "percent"),
            Column("coverage_rate_after", text("coverage_after", lang), "percent"),
            Column("optimal", text("optimal", lang), "bool"),
            Column("gap", text("mip_gap", lang), "percent"),
            Column("status", text("status", lang)),
            Column("unreachable_population", text("unreachable_population", lang), "people"),
        ),
        rows=_frame(
            runs,
            [
                "kind",
                "layer",
                "model",
                "sites",
                "coverage_rate_before",
                "coverage_rate_after",
                "optimal",
                "gap",
                "status",
                "unreachable_population",
            ],
        ),
        ids=("kind",),
    )
    sug = result.suggestions
    rows = []
    for kind, spec in result.specs.items():
        part = sug[sug["kind"] == kind].sort_values("rank")
        for r in part.drop(columns=part.geometry.name).to_dict("records"):
            rows.append(
                {**r, "layer": spec.label(lang), "model": i18n.model_label(r["model"], lang)}
            )
    sites_table = _table(
        "suggestions",
        lang,
        columns=(
            Column("layer", text("layer", lang)),
            Column("rank", text("rank", lang), "count"),
            Column("name", text("name", lang)),
            Column("street", text("nearest_street", lang)),
            Column("area", text("area", lang)),
            Column("community", text("community", lang)),
            Column("site_id", text("site_id", lang)),
            Column("model", text("model", lang)),
            Column("added_population", text("added_population", lang), "people"),
            Column("coverage_rate_after", text("coverage_after", lang), "percent"),
        ),
        rows=_frame(rows, [*SUGGESTION_COLUMNS, "layer"]),
        ids=("kind",),
    )
    return [runs_table, sites_table]


def _load_table(result: StudyResult, lang: str) -> Table:
    """Facilities whose catchment holds more target population than their capacity (2SFCA)."""
    fac = result.facilities
    rows = []
    if "load_ratio" in fac:
        over = fac[fac["load_ratio"].to_numpy(dtype=float) > 1.0]
        over = over.sort_values("load_ratio", ascending=False)
        for r in over.drop(columns=over.geometry.name).to_dict("records"):
            spec = result.specs.get(r["kind"])
            rows.append({**r, "layer": spec.label(lang) if spec else r["kind"]})
    cols = [*FACILITY_COLUMNS, "layer"]
    return _table(
        "loads",
        lang,
        columns=(
            Column("layer", text("layer", lang)),
            Column("name", text("name", lang)),
            Column("capacity", text("capacity", lang), "number0"),
            Column("demand_load", text("demand_load", lang), "number0"),
            Column("load_ratio", text("load_ratio", lang), "number2"),
        ),
        rows=_frame(rows, cols),
        ids=("kind",),
        note=text("note_loads", lang),
    )


def _equity_table(result: StudyResult, lang: str) -> Table:
    rows = []
    for r in result.equity.to_dict("records"):
        spec = result.specs.get(r["kind"])
        rows.append({**r, "layer": spec.label(lang) if spec else r["kind"]})
    cols = list(EQUITY_COLUMNS)
    return _table(
        "equity",
        lang,
        columns=(
            Column("layer", text("layer", lang)),
            Column("gini", text("gini", lang), "number3"),
            Column("gini_weighted", text("gini_weighted", lang), "number3"),
            Column("cv", text("cv", lang), "number3"),
            Column("worst_area", text("worst_area", lang)),
            Column("worst_rate", text("worst_rate", lang), "percent"),
            Column("best_area", text("best_area", lang)),
            Column("best_rate", text("best_rate", lang), "percent"),
            Column("best_worst_gap", text("best_worst_gap", lang), "percent"),
        ),
        rows=_frame(rows, [*cols, "layer"]),
        ids=("kind",),
        note=text("note_equity", lang),
    )


def _method_tables(result: StudyResult, lang: str) -> list[Table]:
    rows = [
        {
            "kind": kind,
            "layer": spec.label(lang),
            "group": i18n.target_group_label(spec.target_group, lang),
            "speed_kmh": spec.speed_kmh,
            "thresholds": " / ".join(f"{t:g}" for t in spec.thresholds_min),
            "headline_min": spec.headline_min,
            "cutoff_m": spec.cutoff_m,
        }
        for kind, spec in result.specs.items()
    ]
    method = _table(
        "method",
        lang,
        columns=(
            Column("layer", text("layer", lang)),
            Column("group", text("target_group", lang)),
            Column("speed_kmh", text("speed", lang), "number1"),
            Column("thresholds", text("thresholds", lang)),
            Column("headline_min", text("headline_min", lang), "threshold"),
            Column("cutoff_m", text("cutoff_m", lang), "number0"),
        ),
        rows=_frame(
            rows, ["kind", "layer", "group", "speed_kmh", "thresholds", "headline_min", "cutoff_m"]
        ),
        ids=("kind",),
    )
    sources = i18n.attributed_sources(result.sources, lang)
    if result.synthetic:
        sources.append(i18n.SYNTHETIC_BANNER)
    src = _table(
        "sources",
        lang,
        columns=(Column("source", text("source", lang)),),
        rows=_frame([{"source": s} for s in sources], ["source"]),
    )
    return [method, src]


def _checks_table(result: StudyResult, lang: str) -> Table:
    """Everything the inputs left out of the numbers, so that nothing is dropped unseen."""
    rows: list[dict[str, Any]] = []
    sep = "、" if lang == "zh" else ", "
    for kind in result.checks.osm_proxy_layers:
        spec = result.specs[kind]
        rows.append(
            {
                "check": text("chk_osm_proxy", lang, layer=spec.label(lang)),
                "count": int((result.facilities["kind"] == kind).sum()),
                "detail": text("chk_osm_proxy_detail", lang),
            }
        )
    for kind, spec in result.specs.items():
        off = result.unsnapped_facilities(kind)
        if len(off):
            names = [
                f"{n}（{i}）" if lang == "zh" else f"{n} ({i})"
                for i, n in zip(off["facility_id"], off["name"], strict=True)
            ]
            rows.append(
                {
                    "check": text(
                        "chk_facilities", lang, layer=spec.label(lang), m=result.checks.max_snap_m
                    ),
                    "count": len(off),
                    "detail": sep.join(names),
                }
            )
    fac = result.facilities
    if "demand_load" in fac:
        for kind, spec in result.specs.items():
            of_kind = fac[fac["kind"] == kind]
            ran = of_kind["demand_load"].notna().any()  # 2SFCA ran: some capacity was known
            unknown = of_kind[of_kind["capacity"].isna()] if ran else of_kind.iloc[0:0]
            if len(unknown):
                rows.append(
                    {
                        "check": text("chk_no_capacity", lang, layer=spec.label(lang)),
                        "count": len(unknown),
                        "detail": sep.join(map(str, unknown["name"])),
                    }
                )
    c = result.checks
    if c.residents_outside_areas:
        rows.append(
            {
                "check": text("chk_outside", lang),
                "count": c.residents_outside_areas,
                "detail": text(
                    "chk_outside_detail", lang, pop=i18n.fmt_people(c.population_outside_areas)
                ),
            }
        )
    if c.area_overlaps:
        rows.append(
            {
                "check": text("chk_overlap", lang),
                "count": len(c.area_overlaps),
                "detail": sep.join(
                    text("chk_overlap_pair", lang, a=a, b=b, share=i18n.fmt_percent(share))
                    for a, b, share in c.area_overlaps
                ),
            }
        )
    if c.network_warnings:
        detail = (
            text("chk_drive_network", lang, share=i18n.fmt_percent(c.footpath_share))
            if lang == "zh" and c.footpath_share is not None
            else "; ".join(c.network_warnings)
        )
        rows.append({"check": text("chk_network", lang), "count": None, "detail": detail})
    if not rows:
        rows.append({"check": text("chk_none", lang), "count": None, "detail": ""})
    return _table(
        "checks",
        lang,
        columns=(
            Column("check", text("check", lang)),
            Column("count", text("check_count", lang), "count"),
            Column("detail", text("check_detail", lang)),
        ),
        rows=_frame(rows, ["check", "count", "detail"]),
    )


_SHEET_BAD: Final = re.compile(r"[\[\]:*?/\\]")


def _table(key: str, lang: str, *, title_n: int | None = None, **fields: Any) -> Table:
    """A table whose title (``tbl_KEY``) and sheet (``sheet_KEY``) come from its key."""
    title = text(f"tbl_{key}", lang) if title_n is None else text(f"tbl_{key}", lang, n=title_n)
    return Table(key=key, title=title, sheet=_sheet(key, lang), **fields)


def _coverage_columns(lang: str, *, minutes: bool = False) -> list[Column]:
    """Target population, covered population and rate (and the mean and P90 walk)."""
    cols = [
        Column("population", text("target_population", lang), "people"),
        Column("covered_population", text("covered_population", lang), "people"),
        Column("coverage_rate", text("coverage_rate", lang), "percent"),
    ]
    if minutes:
        cols += [
            Column("mean_minutes", text("mean_minutes", lang), "minutes"),
            Column("p90_minutes", text("p90_minutes", lang), "minutes"),
        ]
    return cols


def _sheet(key: str, lang: str) -> str:
    """A sheet name Excel accepts: its forbidden characters replaced, at most 31 characters."""
    return _SHEET_BAD.sub("_", text(f"sheet_{key}", lang))[:31]


def report_tables(result: StudyResult, *, lang: str = "zh") -> list[Table]:
    """Every table of the report, in reading order (the workbook has one sheet per table)."""
    i18n.check_lang(lang)
    return [
        *_target_tables(result, lang),
        *_headline_tables(result, lang),
        *_street_tables(result, lang),
        *_community_table(result, lang),
        _gap_table(result, lang),
        *_suggestion_tables(result, lang),
        _equity_table(result, lang),
        _load_table(result, lang),
        *_method_tables(result, lang),
        _checks_table(result, lang),
    ]


def raw_value(value: Any) -> str:
    """The exact value behind a cell, as text: ``repr`` of floats, ``true``/``false``, text."""
    value = clean_value(value)
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)
