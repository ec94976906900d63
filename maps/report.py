"""The gap report for district leaders: one printable self-contained HTML file, plus XLSX.

Leaders read it on paper (A4) or on an intranet PC, in Chinese by default.  It answers, in this
order: whether the district's written planning targets are met (when the plan has targets: the
report opens with them, since leaders are measured against them); how far each layer is from the
15-minute goal; which 街道 (and 社区) lag; where the worst
gaps are and how many people they hold; what the suggested sites would change; how evenly
service is spread; and how the figures were made (speeds, thresholds, data sources).

The report renders the :class:`~coverage.result.StudyResult` tables and computes nothing:
:func:`report_tables` selects and orders rows and columns, and the HTML and the workbook are both
written from those same :class:`Table` objects, so they cannot disagree.  Every HTML cell keeps
the exact value it shows in ``data-value`` (Python ``repr`` of floats, ``nan``/``inf`` spelled
out), so a reader program (and the tests) can check the report against the analysis digit for
digit.  Numbers are formatted by :mod:`maps.i18n` (percent with one decimal, whole people).

Planning targets (``result.targets`` / ``result.target_units``) open the report: one row per
target, its value read as a share or a count by the target's measure (a per-row format), fields
the measure does not define shown as a dash (and left empty in the workbook), the reason a
target cannot be met in a full-width row under it; then the worst 街道/社区 of each target not
met, grouped under the target's label.
"""

from __future__ import annotations

import html
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from coverage.metrics import METRIC_COLUMNS
from coverage.result import StudyResult, SuggestionRun
from layers.atomic import atomic_path, check_target
from maps import charts, i18n
from maps.i18n import text

log = logging.getLogger(__name__)

#: Gap zones listed per layer (the GIS export holds all of them).
WORST_GAPS: Final = 10
#: Coverage rates below this are printed in red in the tables at the goal minutes.
LOW_RATE: Final = 0.5

_T: Final[dict[str, tuple[str, str]]] = {
    "report": ("15分钟公共服务圈缺口报告", "15-minute service circle gap report"),
    "sec_targets": ("规划目标完成情况", "Planning targets"),
    "sec_headline": ("总体覆盖与15分钟目标", "Coverage against the 15-minute goal"),
    "sec_streets": ("各街道覆盖情况", "Coverage by sub-district (jiedao)"),
    "sec_communities": ("各社区覆盖情况", "Coverage by community (shequ)"),
    "sec_gaps": ("服务缺口（按未覆盖人口排序）", "Worst service gaps"),
    "sec_suggestions": ("建议新增选址及效果", "Suggested new sites: before and after"),
    "sec_equity": ("公平性", "Equity across sub-districts"),
    "sec_method": ("方法与数据", "Method and data"),
    "sec_conclusions": ("结论", "Conclusions"),
    "status_optimal": ("已证明最优", "proven optimal"),
    "status_gap": (
        "时限内未证明最优，与最优解最多相差{gap}",
        "not proven optimal within the time limit; at most {gap} below the optimum",
    ),
    "status_unproven": ("时限内未证明最优", "not proven optimal within the time limit"),
    "concl_rate": (
        "{group}中{rate}在{m}分钟步行范围内有{label}",
        "{rate} of {group} live within a {m}-minute walk of a {label}",
    ),
    "concl_no_people": ("{label}：没有服务对象人口", "{label}: no target population"),
    "concl_worst": ("最差的是{area}（{rate}）", "the lowest sub-district is {area} ({rate})"),
    "concl_all_full": ("各街道均已全覆盖", "every sub-district is fully covered"),
    "concl_after": ("新增{n}处可提高到{rate}", "{n} new sites would raise it to {rate}"),
    "concl_off": (
        "另有{n}处设施离路网过远，未计入",
        "{n} facilities too far from any street are not counted",
    ),
    "headline_card": (
        "{covered} / {population} 名{group}在{m}分钟步行范围内",
        "{covered} of {population} ({group}) within a {m}-minute walk",
    ),
    "goal": ("目标：100%（{m}分钟）", "goal: 100% within {m} min"),
    "tbl_targets": ("逐项核对（{n}项）", "Each target checked ({n})"),
    "tbl_target_units": (
        "未达标目标中最差的街道/社区（每个目标最多{n}个）",
        "Worst sub-districts / communities of the targets not met (at most {n} per target)",
    ),
    "note_targets": (
        "现状值：全区目标为全区数值，各街道/各社区目标为最差单元的数值。缺口人口：达到目标尚缺的服务对象"
        "人口（覆盖率目标），或未全覆盖社区中不可达的人口（全覆盖社区占比目标），各单元合计。需新增站点："
        "从候选点中同时满足该图层全部覆盖类目标所需的最少新增站点数，同一图层的覆盖类目标共用此数，"
        "不可相加；设施数量目标为尚缺的设施数；“—”表示候选点无法满足，原因列于该目标下方。",
        "Value: the district's value, or for targets of each sub-district / community the worst "
        "unit's value.  People short: target-group people still missing to reach the target "
        "(coverage targets) or out of reach in communities not fully covered (community share "
        "targets), summed over units.  New sites needed: the fewest candidate sites that meet "
        "every coverage target of the layer at once; coverage targets of one layer share this "
        "number (do not add them up); for facility counts, the facilities missing.  A dash means "
        "no set of candidates can meet the target; the reason is given under it.",
    ),
    "note_target_units": (
        "按缺口从大到小排列；完整的单元列表见GIS导出（target_units）。",
        "Largest shortfall first; every unit is in the GIS export (target_units).",
    ),
    "unit_rank": ("排序", "rank"),
    "tbl_headline": ("各图层全区覆盖（目标分钟）", "District coverage per layer (goal minutes)"),
    "tbl_thresholds": ("各步行时间阈值的全区覆盖", "District coverage at each threshold"),
    "tbl_streets": ("各街道覆盖率（目标分钟）", "Coverage rate by sub-district (goal minutes)"),
    "tbl_street_detail": ("各街道明细", "Sub-district detail"),
    "tbl_communities": ("各社区明细", "Community detail"),
    "tbl_gaps": ("各图层最严重的{n}个缺口", "The {n} worst gaps per layer"),
    "tbl_runs": ("选址前后全区覆盖率", "District coverage before and after the suggested sites"),
    "tbl_suggestions": ("建议新增选址（按选择顺序）", "Suggested sites in the order chosen"),
    "tbl_equity": ("各街道之间的覆盖差异", "Spread of coverage across sub-districts"),
    "tbl_method": ("分析参数", "Parameters"),
    "tbl_sources": ("数据来源", "Data sources"),
    "tbl_checks": (
        "数据核查：未计入或需留意的数据",
        "Data checks: what was left out or needs a look",
    ),
    "check": ("核查项", "check"),
    "check_count": ("数量", "count"),
    "check_detail": ("说明", "detail"),
    "chk_facilities": (
        "{layer}：离路网超过{m:.0f}米、未参与计算的设施",
        "{layer}: facilities farther than {m:.0f} m from any street, not counted",
    ),
    "chk_outside": ("不在任何街道范围内的居民点", "resident units inside no sub-district"),
    "chk_outside_detail": (
        "人口{pop}，计入全区数字，不计入任何街道",
        "population {pop}; counted in the district figures, in no sub-district",
    ),
    "chk_overlap": ("相互重叠的街道", "overlapping sub-districts"),
    "chk_overlap_pair": ("{a}与{b}（重叠{share}）", "{a} and {b} ({share} overlap)"),
    "chk_network": ("路网提示", "street network"),
    "chk_drive_network": (
        "人行道、小路、步行街和台阶只占路网长度的{share}，这看起来是机动车路网，缺少居民实际步行的小路，"
        "会低估覆盖率；请改用 .osm.pbf 或步行（walk/all）GraphML 路网",
        "{share} footways",
    ),
    "chk_none": ("未发现问题", "nothing found"),
    "layer": ("图层", "layer"),
    "target_group": ("服务对象", "target group"),
    "speed": ("步行速度（公里/小时）", "walking speed (km/h)"),
    "thresholds": ("统计阈值（分钟）", "thresholds (min)"),
    "headline_min": ("目标（分钟）", "goal (min)"),
    "cutoff_m": ("最大步行距离（米）", "longest walk (m)"),
    "mean_minutes": ("平均步行时间（分钟）", "mean walking minutes"),
    "p90_minutes": ("90%分位步行时间（分钟）", "90th percentile minutes"),
    "unsnapped": ("离路网过远的居民点", "resident units off the network"),
    "unreachable": ("路网不可达的居民点", "resident units unreachable"),
    "sites": ("新增站点数", "new sites"),
    "optimal": ("已证明最优", "proven optimal"),
    "mip_gap": ("最优性差距", "optimality gap"),
    "status": ("求解状态", "solver status"),
    "unreachable_population": ("任何候选点都无法覆盖的人口", "population no candidate can reach"),
    "gini": ("基尼系数（各街道等权）", "Gini (each sub-district counts once)"),
    "tbl_loads": ("服务人口超过容量的设施（2SFCA）", "Facilities over capacity (2SFCA)"),
    "demand_load": ("服务范围内的需求人口", "demand in catchment"),
    "load_ratio": ("需求/容量", "demand / capacity"),
    "note_loads": (
        "需求人口按两步移动搜索法（高斯衰减，目标分钟为服务半径）计算，一个居民同时计入范围内的每个设施；"
        "比值大于1表示范围内的服务对象多于设施容量。容量未知的设施不参与计算，列于数据核查。",
        "Demand by the two-step floating catchment method (Gaussian decay, the goal minutes as "
        "the catchment); a resident counts for every facility in reach.  A ratio above 1 means "
        "more target population in reach than the facility's capacity.  Facilities of unknown "
        "capacity are left out and listed under Data checks.",
    ),
    "chk_no_capacity": (
        "{layer}：容量未知、未参与供需计算的设施",
        "{layer}: facilities of unknown capacity, left out of the demand/capacity figures",
    ),
    "gini_weighted": ("基尼系数（按人口加权）", "Gini (weighted by population)"),
    "note_equity": (
        "等权基尼系数把每个街道算作一个单位，衡量“各地方”是否同样被服务，小街道落后也会显现；"
        "按人口加权的基尼系数衡量“各居民”之间的差异，大街道的分量更重。两者并列，数值不同是正常的。",
        "The first Gini counts each sub-district once: are places served alike (a small "
        "sub-district left behind shows).  The weighted Gini weighs each by its target "
        "population: how unequal coverage is between people.  They answer different questions "
        "and usually differ.",
    ),
    "cv": ("变异系数", "coefficient of variation"),
    "worst_area": ("覆盖最低的街道", "lowest sub-district"),
    "worst_rate": ("最低覆盖率", "lowest rate"),
    "best_area": ("覆盖最高的街道", "highest sub-district"),
    "best_rate": ("最高覆盖率", "highest rate"),
    "best_worst_gap": ("最高与最低之差", "highest minus lowest"),
    "source": ("来源", "source"),
    "cap_minutes_distribution": (
        "曲线表示在横轴分钟内可到达最近设施的服务对象人口比例；离路网过远或不可达的居民计入分母，"
        "因此曲线在目标分钟处的数值等于上表覆盖率。",
        "Share of each target group within x minutes of the nearest facility; residents off the "
        "network or unreachable stay in the denominator, so the curve at the goal equals the "
        "coverage rate above.",
    ),
    "cap_coverage_by_area": (
        "各街道在目标分钟内的服务对象覆盖率，虚线为100%目标。",
        "Coverage of each sub-district at the goal minutes; the dashed line is the 100% goal.",
    ),
    "cap_coverage_curve": (
        "按建议顺序逐个新增站点后的全区覆盖率（0为现状）。",
        "District coverage as the suggested sites are added in order (0 = today).",
    ),
    "no_rows": ("（无）", "(none)"),
    "method_text": (
        "步行时间按真实步行路网计算：居民点和设施分别接入最近的可步行道路，距离=接入段+沿路网最短距离，"
        "再按服务对象的步行速度换算为分钟；不考虑单行限制。覆盖率=在目标分钟内可到达最近设施的服务对象人口"
        "÷服务对象总人口（离路网过远或不可达的居民点计入分母）。服务范围图形仅用于展示，覆盖率一律按步行时间计算。",
        "Walking minutes come from the street network: residents and facilities join the nearest "
        "walkable street; distance = access legs + shortest network path; minutes = distance / "
        "the target group's walking speed; one-way rules are ignored for walking.  Coverage = "
        "target population whose nearest facility is within the goal minutes / total target "
        "population (units off the network or unreachable stay in the denominator).  Service-area "
        "shapes are illustrations; coverage is always computed from travel times.",
    ),
    "synthetic_warning": (
        "注意：本报告使用合成（演示）数据，所有设施、居民和数字均非真实情况。",
        "Note: this report uses synthetic (demo) data; no facility, resident or figure is real.",
    ),
}

_SHEETS: Final[dict[str, tuple[str, str]]] = {
    "targets": ("规划目标", "Targets"),
    "target_units": ("目标未达标单元", "Targets - worst units"),
    "headline": ("总体覆盖", "Headline"),
    "thresholds": ("分阈值覆盖", "By threshold"),
    "streets": ("街道覆盖率", "Sub-districts"),
    "street_detail": ("街道明细", "Sub-district detail"),
    "communities": ("社区明细", "Communities"),
    "gaps": ("服务缺口", "Gaps"),
    "runs": ("选址前后", "Before-after"),
    "suggestions": ("建议选址", "Suggested sites"),
    "equity": ("公平性", "Equity"),
    "method": ("分析参数", "Parameters"),
    "sources": ("数据来源", "Sources"),
    "checks": ("数据核查", "Data checks"),
    "loads": ("超负荷设施", "Over-subscribed"),
}


def _t(key: str, lang: str, **values: object) -> str:
    zh, en = _T[key]
    s = zh if lang == "zh" else en
    return s.format(**values) if values else s


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

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
_XLSX_SHOWN: Final = frozenset({"status", "units"})
#: Formats shown as text cells (left-aligned) rather than numbers.
_TEXT_FORMATS: Final = frozenset({"text", "bool", "status", "units"})
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

    def display(self, lang: str) -> list[list[str]]:
        """The shown text of every cell, row by row."""
        out = []
        for rec in self.rows.to_dict("records"):
            out.append([FORMATS[c.fmt_of(rec)][0](_clean(rec[c.key]), lang) for c in self.columns])
        return out

    def html_columns(self) -> tuple[Column, ...]:
        """The columns shown as cells of the HTML rows."""
        return tuple(c for c in self.columns if c.key not in (self.group_key, self.detail_key))


def _clean(value: Any) -> Any:
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
            }
        )
    table = Table(
        key="targets",
        title=_t("tbl_targets", lang, n=len(rows)),
        sheet=_sheet("targets", lang),
        columns=(
            Column("label", text("target", lang)),
            Column("layer_label", _t("layer", lang)),
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
            Column("reason", text("reason", lang)),  # under its row in the HTML
        ),
        rows=_frame(rows, [*targets.columns, *(k for k in rows[0] if k not in targets)]),
        ids=("target", "layer", "scope", "measure"),
        note=_t("note_targets", lang),
        detail_key="reason",
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
    unit_table = Table(
        key="target_units",
        title=_t("tbl_target_units", lang, n=WORST_UNITS),
        sheet=_sheet("target_units", lang),
        columns=(
            Column("label", text("target", lang)),
            Column("rank", _t("unit_rank", lang), "count"),
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
        note=_t("note_target_units", lang),
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
    common = [
        Column("population", text("target_population", lang), "people"),
        Column("covered_population", text("covered_population", lang), "people"),
        Column("coverage_rate", text("coverage_rate", lang), "percent"),
    ]
    headline = Table(
        key="headline",
        title=_t("tbl_headline", lang),
        sheet=_sheet("headline", lang),
        columns=(
            Column("layer", _t("layer", lang)),
            Column("group", _t("target_group", lang)),
            Column("minutes", _t("headline_min", lang), "threshold"),
            *common,
            Column("mean_minutes", _t("mean_minutes", lang), "minutes"),
            Column("p90_minutes", _t("p90_minutes", lang), "minutes"),
            Column("unsnapped", _t("unsnapped", lang), "count"),
            Column("unreachable", _t("unreachable", lang), "count"),
        ),
        rows=_frame(head_rows, [*_METRIC_COLS, "layer", "group"]),
        ids=("kind",),
        flag_low=True,
    )
    thresholds = Table(
        key="thresholds",
        title=_t("tbl_thresholds", lang),
        sheet=_sheet("thresholds", lang),
        columns=(
            Column("layer", _t("layer", lang)),
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
    matrix = Table(
        key="streets",
        title=_t("tbl_streets", lang),
        sheet=_sheet("streets", lang),
        columns=(
            Column("area", text("area", lang)),
            *(Column(f"rate_{k}", s.label(lang), "percent") for k, s in result.specs.items()),
        ),
        rows=_frame(list(wide.values()), ["area", *rate_cols]),
        ids=("area",),
        flag_low=True,
    )
    detail = Table(
        key="street_detail",
        title=_t("tbl_street_detail", lang),
        sheet=_sheet("street_detail", lang),
        columns=(
            Column("area", text("area", lang)),
            Column("layer", _t("layer", lang)),
            Column("population", text("target_population", lang), "people"),
            Column("covered_population", text("covered_population", lang), "people"),
            Column("coverage_rate", text("coverage_rate", lang), "percent"),
            Column("mean_minutes", _t("mean_minutes", lang), "minutes"),
            Column("p90_minutes", _t("p90_minutes", lang), "minutes"),
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
        Table(
            key="communities",
            title=_t("tbl_communities", lang),
            sheet=_sheet("communities", lang),
            columns=(
                Column("area", text("community", lang)),
                Column("parent", text("area", lang)),
                Column("layer", _t("layer", lang)),
                Column("population", text("target_population", lang), "people"),
                Column("covered_population", text("covered_population", lang), "people"),
                Column("coverage_rate", text("coverage_rate", lang), "percent"),
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
    cols = [
        "kind",
        "gap_id",
        "uncovered_population",
        "residents",
        "area",
        "area_km2",
        "nearest_facility",
        "nearest_facility_minutes",
        "layer",
        "nearest_name",
    ]
    return Table(
        key="gaps",
        title=_t("tbl_gaps", lang, n=WORST_GAPS),
        sheet=_sheet("gaps", lang),
        columns=(
            Column("layer", _t("layer", lang)),
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
        return _t("status_optimal", lang)
    if math.isfinite(run.gap):
        return _t("status_gap", lang, gap=i18n.fmt_percent(run.gap))
    return _t("status_unproven", lang)


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
    runs_table = Table(
        key="runs",
        title=_t("tbl_runs", lang),
        sheet=_sheet("runs", lang),
        columns=(
            Column("layer", _t("layer", lang)),
            Column("model", text("model", lang)),
            Column("sites", _t("sites", lang), "count"),
            Column("coverage_rate_before", text("coverage_before", lang), "percent"),
            Column("coverage_rate_after", text("coverage_after", lang), "percent"),
            Column("optimal", _t("optimal", lang), "bool"),
            Column("gap", _t("mip_gap", lang), "percent"),
            Column("status", _t("status", lang)),
            Column("unreachable_population", _t("unreachable_population", lang), "people"),
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
    sites_table = Table(
        key="suggestions",
        title=_t("tbl_suggestions", lang),
        sheet=_sheet("suggestions", lang),
        columns=(
            Column("layer", _t("layer", lang)),
            Column("rank", text("rank", lang), "count"),
            Column("name", text("name", lang)),
            Column("site_id", text("site_id", lang)),
            Column("model", text("model", lang)),
            Column("added_population", text("added_population", lang), "people"),
            Column("coverage_rate_after", text("coverage_after", lang), "percent"),
        ),
        rows=_frame(
            rows,
            [
                "kind",
                "rank",
                "site_id",
                "name",
                "model",
                "added_population",
                "coverage_rate_after",
                "layer",
            ],
        ),
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
    cols = ["kind", "layer", "name", "capacity", "demand_load", "load_ratio"]
    return Table(
        key="loads",
        title=_t("tbl_loads", lang),
        sheet=_sheet("loads", lang),
        columns=(
            Column("layer", _t("layer", lang)),
            Column("name", text("name", lang)),
            Column("capacity", text("capacity", lang), "number0"),
            Column("demand_load", _t("demand_load", lang), "number0"),
            Column("load_ratio", _t("load_ratio", lang), "number2"),
        ),
        rows=_frame(rows, cols),
        ids=("kind",),
        note=_t("note_loads", lang),
    )


def _equity_table(result: StudyResult, lang: str) -> Table:
    rows = []
    for r in result.equity.to_dict("records"):
        spec = result.specs.get(r["kind"])
        rows.append({**r, "layer": spec.label(lang) if spec else r["kind"]})
    cols = [
        "kind",
        "gini",
        "gini_weighted",
        "cv",
        "worst_area",
        "worst_rate",
        "best_area",
        "best_rate",
        "best_worst_gap",
    ]
    return Table(
        key="equity",
        title=_t("tbl_equity", lang),
        sheet=_sheet("equity", lang),
        columns=(
            Column("layer", _t("layer", lang)),
            Column("gini", _t("gini", lang), "number3"),
            Column("gini_weighted", _t("gini_weighted", lang), "number3"),
            Column("cv", _t("cv", lang), "number3"),
            Column("worst_area", _t("worst_area", lang)),
            Column("worst_rate", _t("worst_rate", lang), "percent"),
            Column("best_area", _t("best_area", lang)),
            Column("best_rate", _t("best_rate", lang), "percent"),
            Column("best_worst_gap", _t("best_worst_gap", lang), "percent"),
        ),
        rows=_frame(rows, [*cols, "layer"]),
        ids=("kind",),
        note=_t("note_equity", lang),
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
    method = Table(
        key="method",
        title=_t("tbl_method", lang),
        sheet=_sheet("method", lang),
        columns=(
            Column("layer", _t("layer", lang)),
            Column("group", _t("target_group", lang)),
            Column("speed_kmh", _t("speed", lang), "number1"),
            Column("thresholds", _t("thresholds", lang)),
            Column("headline_min", _t("headline_min", lang), "threshold"),
            Column("cutoff_m", _t("cutoff_m", lang), "number0"),
        ),
        rows=_frame(
            rows, ["kind", "layer", "group", "speed_kmh", "thresholds", "headline_min", "cutoff_m"]
        ),
        ids=("kind",),
    )
    sources = i18n.attributed_sources(result.sources, lang)
    if result.synthetic:
        sources.append(i18n.SYNTHETIC_BANNER)
    src = Table(
        key="sources",
        title=_t("tbl_sources", lang),
        sheet=_sheet("sources", lang),
        columns=(Column("source", _t("source", lang)),),
        rows=_frame([{"source": s} for s in sources], ["source"]),
    )
    return [method, src]


def _checks_table(result: StudyResult, lang: str) -> Table:
    """Everything the inputs left out of the numbers, so that nothing is dropped unseen."""
    rows: list[dict[str, Any]] = []
    sep = "、" if lang == "zh" else ", "
    for kind, spec in result.specs.items():
        off = result.unsnapped_facilities(kind)
        if len(off):
            names = [
                f"{n}（{i}）" if lang == "zh" else f"{n} ({i})"
                for i, n in zip(off["facility_id"], off["name"], strict=True)
            ]
            rows.append(
                {
                    "check": _t(
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
                        "check": _t("chk_no_capacity", lang, layer=spec.label(lang)),
                        "count": len(unknown),
                        "detail": sep.join(map(str, unknown["name"])),
                    }
                )
    c = result.checks
    if c.residents_outside_areas:
        rows.append(
            {
                "check": _t("chk_outside", lang),
                "count": c.residents_outside_areas,
                "detail": _t(
                    "chk_outside_detail", lang, pop=i18n.fmt_people(c.population_outside_areas)
                ),
            }
        )
    if c.area_overlaps:
        rows.append(
            {
                "check": _t("chk_overlap", lang),
                "count": len(c.area_overlaps),
                "detail": sep.join(
                    _t("chk_overlap_pair", lang, a=a, b=b, share=i18n.fmt_percent(share))
                    for a, b, share in c.area_overlaps
                ),
            }
        )
    if c.network_warnings:
        detail = (
            _t("chk_drive_network", lang, share=i18n.fmt_percent(c.footpath_share))
            if lang == "zh" and c.footpath_share is not None
            else "; ".join(c.network_warnings)
        )
        rows.append({"check": _t("chk_network", lang), "count": None, "detail": detail})
    if not rows:
        rows.append({"check": _t("chk_none", lang), "count": None, "detail": ""})
    return Table(
        key="checks",
        title=_t("tbl_checks", lang),
        sheet=_sheet("checks", lang),
        columns=(
            Column("check", _t("check", lang)),
            Column("count", _t("check_count", lang), "count"),
            Column("detail", _t("check_detail", lang)),
        ),
        rows=_frame(rows, ["check", "count", "detail"]),
    )


_SHEET_BAD: Final = re.compile(r"[\[\]:*?/\\]")


def _sheet(key: str, lang: str) -> str:
    zh, en = _SHEETS[key]
    return _SHEET_BAD.sub("_", zh if lang == "zh" else en)[:31]


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


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def raw_value(value: Any) -> str:
    """The exact value behind a cell, as text: ``repr`` of floats, ``true``/``false``, text."""
    value = _clean(value)
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _table_html(table: Table, lang: str) -> str:
    columns = table.html_columns()
    span = len(columns)
    head = "".join(
        f'<th data-key="{_esc(c.key)}" class="{"txt" if c.fmt in _TEXT_FORMATS else "num"}">'
        f"{_esc(c.label)}</th>"
        for c in columns
    )
    body = []
    records = table.rows.to_dict("records")
    group: object = None
    for n, rec in enumerate(records):
        if table.group_key is not None:
            by = rec[table.group_by or table.group_key]
            if n == 0 or by != group:
                group = by
                heading = _esc(rec[table.group_key])
                body.append(
                    f'<tr class="group"><th colspan="{span}" scope="colgroup">{heading}</th></tr>'
                )
        attrs = "".join(f' data-{k}="{_esc(raw_value(rec[k]))}"' for k in table.ids)
        cells = []
        for col in columns:
            value = _clean(rec[col.key])
            fmt = col.fmt_of(rec)
            txt = FORMATS[fmt][0](value, lang)
            cls = "txt" if fmt in _TEXT_FORMATS else "num"
            low = isinstance(value, float) and math.isfinite(value) and value < LOW_RATE
            if table.flag_low and fmt == "percent" and low:
                cls += " low"
            if fmt == "status":
                cls += " met" if value == "met" else " unmet"
            elif fmt == "units":
                cls += " units"
            cells.append(
                f'<td class="{cls}" data-key="{_esc(col.key)}" '
                f'data-value="{_esc(raw_value(value))}">{_esc(txt)}</td>'
            )
        body.append(f"<tr{attrs}>{''.join(cells)}</tr>")
        detail = "" if table.detail_key is None else raw_value(rec[table.detail_key])
        if detail and detail != "nan":
            title = next(c.label for c in table.columns if c.key == table.detail_key)
            body.append(
                f'<tr class="detail"><td colspan="{span}" data-key="{_esc(table.detail_key)}" '
                f'data-value="{_esc(detail)}"><b>{_esc(title)}{"：" if lang == "zh" else ": "}</b>'
                f"{_esc(detail)}</td></tr>"
            )
    if not body:
        body.append(f'<tr class="empty"><td colspan="{span}">{_esc(_t("no_rows", lang))}</td></tr>')
    note = f'<p class="note">{_esc(table.note)}</p>' if table.note else ""
    cls = ' class="targets"' if table.key.startswith("target") else ""
    return (
        f'<table id="t-{_esc(table.key)}" data-table="{_esc(table.key)}"{cls}>'
        f"<caption>{_esc(table.title)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>{note}"
    )


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
            out.append(_t("concl_no_people", lang, label=label) + end)
            continue
        parts = [
            _t(
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
                    _t(
                        "concl_worst",
                        lang,
                        area=worst["area"],
                        rate=i18n.fmt_percent(float(worst["coverage_rate"])),
                    )
                )
            else:
                parts.append(_t("concl_all_full", lang))
        run = result.suggestion_runs.get(kind)
        n_sites = int((result.suggestions["kind"] == kind).sum()) if run is not None else 0
        if run is not None and n_sites and math.isfinite(run.coverage_rate_after):
            parts.append(
                _t("concl_after", lang, n=n_sites, rate=i18n.fmt_percent(run.coverage_rate_after))
            )
        off = len(result.unsnapped_facilities(kind))
        if off:
            parts.append(_t("concl_off", lang, n=off))
        out.append(sep.join(parts) + end)
    return out


def _conclusions_html(result: StudyResult, lang: str) -> str:
    items = "".join(f"<li>{_esc(line)}</li>" for line in conclusions(result, lang))
    return f'<ul class="conclusions" id="conclusions">{items}</ul>'


def _cards_html(result: StudyResult, lang: str) -> str:
    cards = []
    for kind, spec in result.specs.items():
        m = result.metrics
        sel = m[
            (m["kind"] == kind) & (m["level"] == "district") & (m["minutes"] == spec.headline_min)
        ]
        if sel.empty:
            continue
        r = sel.iloc[0]
        rate = float(r["coverage_rate"])
        width = 0.0 if not math.isfinite(rate) else max(0.0, min(rate, 1.0)) * 100
        caption = _t(
            "headline_card",
            lang,
            covered=i18n.fmt_people(float(r["covered_population"])),
            population=i18n.fmt_people(float(r["population"])),
            group=i18n.target_group_label(spec.target_group, lang),
            m=f"{spec.headline_min:g}",
        )
        dot = _colour(spec.colour)
        cards.append(
            f'<div class="card" data-kind="{_esc(kind)}">'
            f'<div class="card-label"><span class="dot" style="background:{dot}"></span>'
            f"{_esc(spec.label(lang))}</div>"
            f'<div class="card-rate" data-value="{_esc(raw_value(rate))}">'
            f"{_esc(i18n.fmt_percent(rate))}</div>"
            f'<div class="bar"><div class="fill" style="width:{width:.1f}%"></div></div>'
            f'<div class="card-caption">{_esc(caption)}</div>'
            f'<div class="card-goal">{_esc(_t("goal", lang, m=f"{spec.headline_min:g}"))}</div>'
            "</div>"
        )
    return f'<div class="cards">{"".join(cards)}</div>'


_COLOUR_RE: Final = re.compile(r"^#[0-9a-fA-F]{3,8}$")


def _colour(colour: str) -> str:
    return colour if _COLOUR_RE.match(colour or "") else "#555555"


_CSS: Final = """
@page { size: A4; margin: 14mm 12mm 16mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC",
  "WenQuanYi Micro Hei", "Helvetica Neue", Arial, sans-serif; color: #222; margin: 0 auto;
  max-width: 190mm; padding: 10mm 4mm; font-size: 10.5pt; line-height: 1.5; }
h1 { font-size: 18pt; margin: 0 0 2mm; }
h2 { font-size: 13pt; margin: 8mm 0 2mm; padding-bottom: 1mm; border-bottom: 2px solid #1b9e77;
  page-break-after: avoid; break-after: avoid; }
.subtitle { color: #555; margin-bottom: 4mm; }
.synthetic { background: #b2182b; color: #fff; font-weight: 700; padding: 2mm 4mm;
  border-radius: 2mm; margin: 2mm 0 4mm; }
table { width: 100%; border-collapse: collapse; margin: 2mm 0 5mm; font-size: 9pt; }
caption { text-align: left; font-weight: 600; padding: 1mm 0; caption-side: top; }
th, td { border: 1px solid #ccc; padding: 1mm 2mm; vertical-align: top; }
th { background: #f0f0f0; font-weight: 600; }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
td.txt { word-break: keep-all; overflow-wrap: break-word; }
td.low { color: #b2182b; font-weight: 600; }
td.met, td.unmet { font-weight: 700; white-space: nowrap; text-align: center; }
td.met { color: #1a7f37; background: #e6f4ea; }
td.unmet { color: #b2182b; background: #fbe9eb; }
tr.group th { background: #fafafa; text-align: left; font-weight: 600; }
tr.detail td { font-size: 8.5pt; color: #444; background: #fffbea; border-top: 0; }
table.targets { font-size: 8.5pt; }
table.targets th, table.targets td { padding: 1mm 1mm; }
table.targets th { font-size: 8pt; word-break: keep-all; }
table.targets td[data-key="layer_label"], table.targets td[data-key="measure_label"] {
  min-width: 5em; }
table.targets td.txt { word-break: normal; overflow-wrap: break-word; }
table.targets td[data-key="label"] { width: 24%; min-width: 7em; }
table.targets td[data-key="scope_label"] { min-width: 4.4em; }
td.units { white-space: nowrap; }
tr.empty td { color: #777; text-align: center; }
thead { display: table-header-group; }
tr, .card, figure { page-break-inside: avoid; break-inside: avoid; }
.cards { display: flex; flex-wrap: wrap; gap: 3mm; margin: 2mm 0 4mm; }
.card { flex: 1 1 42mm; border: 1px solid #ddd; border-radius: 2mm; padding: 2mm 3mm; }
.card-label { font-weight: 600; }
.card-rate { font-size: 20pt; font-weight: 700; }
.card-caption, .card-goal { font-size: 8.5pt; color: #555; }
.bar { height: 2mm; background: #eee; border-radius: 1mm; overflow: hidden; }
.bar .fill { height: 100%; background: #1b9e77; }
.dot { display: inline-block; width: 3mm; height: 3mm; border-radius: 50%; margin-right: 1.5mm; }
figure { margin: 2mm 0 5mm; }
ul.conclusions { margin: 2mm 0 4mm; padding-left: 5mm; font-size: 11pt; }
ul.conclusions li { margin: 1mm 0; }
figure svg { width: 100%; height: auto; }
figcaption { font-size: 9pt; color: #555; }
.method p, .note { font-size: 9pt; color: #333; }
@media print { body { padding: 0; max-width: none; } a { color: inherit; text-decoration: none; } }
"""


_ZH_NUMERALS: Final = "零一二三四五六七八九十"


def _figure(chart: charts.Chart, lang: str) -> str:
    caption = f"<figcaption>{_esc(_t('cap_' + chart.key, lang))}</figcaption>"
    return f'<figure id="fig-{_esc(chart.key)}">{chart.svg}{caption}</figure>'


def render_report_html(
    result: StudyResult, *, lang: str = "zh", tables: Sequence[Table] | None = None
) -> str:
    """The report page as one HTML string (no external resource of any kind)."""
    i18n.check_lang(lang)
    tables = list(tables) if tables is not None else report_tables(result, lang=lang)
    by_key = {t.key: t for t in tables}
    figs = {c.key: c for c in charts.report_charts(result, lang=lang)}

    def tbl(key: str) -> str:
        return _table_html(by_key[key], lang) if key in by_key else ""

    def fig(key: str) -> str:
        return _figure(figs[key], lang) if key in figs else ""

    parts = [
        f'<h1 id="title">{_esc(result.title)}</h1>',
        f'<div class="subtitle">{_esc(_t("report", lang))}</div>',
    ]
    if result.synthetic:
        parts.append(
            f'<div class="synthetic" id="synthetic">{_esc(i18n.SYNTHETIC_BANNER)} · '
            f"{_esc(_t('synthetic_warning', lang))}</div>"
        )
    numbers = iter(range(1, 20))

    def h2(key: str) -> str:
        n = next(numbers)
        head = f"{_ZH_NUMERALS[n]}、" if lang == "zh" else f"{n}. "
        return f'<h2 id="sec-{key[4:]}">{_esc(head + _t(key, lang))}</h2>'

    parts += [h2("sec_conclusions"), _conclusions_html(result, lang)]
    if "targets" in by_key:
        parts += [h2("sec_targets"), tbl("targets"), tbl("target_units")]
    parts += [
        h2("sec_headline"),
        _cards_html(result, lang),
        tbl("headline"),
        tbl("thresholds"),
        fig("minutes_distribution"),
        h2("sec_streets"),
        tbl("streets"),
        fig("coverage_by_area"),
        tbl("street_detail"),
    ]
    if "communities" in by_key:
        parts += [f"<h3>{_esc(_t('sec_communities', lang))}</h3>", tbl("communities")]
    parts += [
        h2("sec_gaps"),
        tbl("gaps"),
        h2("sec_suggestions"),
        tbl("runs"),
        tbl("suggestions"),
        fig("coverage_curve"),
        h2("sec_equity"),
        tbl("equity"),
        tbl("loads"),
        h2("sec_method") + '<div class="method">',
        f"<p>{_esc(_t('method_text', lang))}</p>",
        tbl("method"),
        tbl("sources"),
        tbl("checks"),
        "</div>",
    ]
    title = f"{result.title} · {_t('report', lang)}"
    return (
        f'<!DOCTYPE html>\n<html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(p for p in parts if p)
        + "</body></html>\n"
    )


# --------------------------------------------------------------------------------------------
# XLSX
# --------------------------------------------------------------------------------------------


def _xlsx_value(value: Any) -> Any:
    """A cell value openpyxl can store: NaN and inf (not representable in XLSX) become empty."""
    value = _clean(value)
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
    if fmt in _XLSX_SHOWN:
        raw = _clean(rec[col.key])
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
