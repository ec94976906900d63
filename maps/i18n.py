"""Labels (Chinese and English) and number formats shared by the map, the report and the charts.

District leaders read Chinese, so ``zh`` is the default everywhere; ``en`` serves reviewers and
the GIS team.  Numbers are formatted in one place so that the map popups, the report tables and
the spreadsheet agree to the digit: percent with one decimal, people as whole numbers with
thousands separators, minutes with one decimal, ``inf`` shown as "unreachable".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from layers.errors import InputError
from layers.spec import TARGET_GROUP_LABELS, LayerSpec

LANGS: Final = ("zh", "en")

#: The banner every output of synthetic (demo) data carries, in both languages on purpose.
SYNTHETIC_BANNER: Final = "合成数据 / SYNTHETIC DATA"

#: key -> (Chinese, English)
LABELS: Final[dict[str, tuple[str, str]]] = {
    # map layers
    "facilities": ("设施", "facilities"),
    "service_areas": ("步行服务范围", "walking service area"),
    "residents": ("居民点步行时间", "residents: walking minutes"),
    "gaps": ("服务缺口", "service gaps"),
    "coverage_map": ("覆盖率", "coverage"),
    "suggestions": ("建议新增选址", "suggested new sites"),
    "legend": ("图例", "Legend"),
    "sources": ("数据来源", "Data sources"),
    # fields
    "name": ("名称", "name"),
    "id": ("编号", "id"),
    "kind": ("类别", "layer"),
    "capacity": ("容量", "capacity"),
    "unknown": ("未知", "unknown"),
    "snapped": ("接入路网", "on the street network"),
    "access_m": ("到路网距离（米）", "distance to street (m)"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "population": ("常住人口", "population"),
    "target_population": ("服务对象人口", "target population"),
    "covered_population": ("覆盖人口", "covered population"),
    "uncovered_population": ("未覆盖服务对象人口", "uncovered target population"),
    "area": ("街道", "sub-district (jiedao)"),
    "community": ("社区", "community (shequ)"),
    "hex": ("网格", "hexagon"),
    "district": ("全区", "district"),
    "minutes": ("步行时间（分钟）", "walking minutes"),
    "minutes_short": ("分钟", "min"),
    "nearest_facility": ("最近设施", "nearest facility"),
    "nearest_minutes": ("到最近设施（分钟）", "minutes to nearest facility"),
    "covered": ("在目标步行时间内", "within the goal"),
    "uncovered": ("超出目标步行时间", "beyond the goal"),
    "unreachable": ("路网不可达", "unreachable on the network"),
    "unsnapped": ("离路网过远", "too far from any street"),
    "facility_unsnapped": (
        "否：离路网过远，不参与计算",
        "no: too far from any street, serves no one in the figures",
    ),
    "no_target": ("无服务对象人口", "no target population"),
    "rank": ("排序", "rank"),
    "suggestion_badge": ("数字为建议顺序", "number = order of choice"),
    "gap_rank": ("缺口排名", "gap rank"),
    "resident_units": ("居民点数", "resident units"),
    "area_km2": ("面积（平方公里）", "area (km²)"),
    "site_id": ("选址编号", "site id"),
    "model": ("模型", "model"),
    "added_population": ("新增覆盖人口", "newly covered population"),
    "coverage_after": ("累计覆盖率", "coverage after"),
    "coverage_rate": ("覆盖率", "coverage rate"),
    "coverage_before": ("建议前覆盖率", "coverage before"),
    "within": ("≤{m:g} 分钟", "≤ {m:g} min"),
    "beyond": ("> {m:g} 分钟（未覆盖）", "> {m:g} min (not covered)"),
    "ring": ("{m:g} 分钟步行范围", "{m:g}-minute walk"),
    # planning targets
    "targets": ("规划目标", "planning targets"),
    "target": ("规划目标", "target"),
    "scope": ("范围", "scope"),
    "measure": ("指标", "measure"),
    "target_status": ("状态", "status"),
    "target_value": ("现状值", "value"),
    "target_threshold": ("目标值", "target"),
    "units_met_col": ("达标单元", "units met"),
    "units_met": ("{met}/{total} 达标", "{met}/{total} met"),
    "shortfall_population": ("缺口人口", "people short"),
    "shortfall_sites": ("缺少设施", "sites short"),
    "sites_needed": ("需新增站点（最少）", "new sites needed"),
    "reason": ("无法达标原因", "why it cannot be met"),
    "unit": ("街道/社区", "sub-district / community"),
    "synthetic_note": (
        "本图表使用合成（演示）数据，不代表真实设施或人口。",
        "This output uses synthetic (demo) data; it shows no real facilities or residents.",
    ),
    # map layer panel and legend
    "layers": ("图层", "Layers"),
    "fold_panel": ("收起/展开图层列表", "hide/show the layer list"),
    "shared_layers": ("规划目标与底图", "targets and base map"),
    "basemap": ("底图", "base map"),
    "streets": ("步行网络（按步行时间着色）", "walk network (by walking minutes)"),
    "legend_dots_lines": ("圆点为居民点，线为街道", "dots: residents; lines: streets"),
    "legend_unsnapped_facility": (
        "空心：离路网过远的设施（不参与计算）",
        "hollow: facility too far from any street (serves no one)",
    ),
}

#: Units of analysis (``level`` column of ``metrics`` and ``areas``).
LEVEL_LABELS: Final[dict[str, tuple[str, str]]] = {
    "district": ("全区", "district"),
    "street": ("街道", "sub-district (jiedao)"),
    "community": ("社区", "community (shequ)"),
    "hex": ("网格", "hexagon"),
}

#: Planning-target vocabulary (``coverage.targets``): scopes, measures and statuses.
SCOPE_LABELS: Final[dict[str, tuple[str, str]]] = {
    "district": ("全区", "district"),
    "street": ("各街道", "each sub-district"),
    "community": ("各社区", "each community"),
}
MEASURE_LABELS: Final[dict[str, tuple[str, str]]] = {
    "facility_count": ("设施数量", "facilities"),
    "coverage_rate": ("覆盖率", "coverage rate"),
    "communities_all_within": ("全覆盖社区占比", "communities fully covered"),
}
STATUS_LABELS: Final[dict[str, tuple[str, str]]] = {
    "met": ("达标", "met"),
    "not met": ("未达标", "not met"),
}

DASH: Final = "—"

#: The attribution OpenStreetMap's licence (ODbL) requires wherever its data is shown.
OSM_ATTRIBUTION: Final = "© OpenStreetMap contributors, ODbL"


#: The source lines the CLI writes (English, as stored in results and exports), and their zh.
SOURCE_LINES: Final[dict[str, str]] = {
    "Street network: © OpenStreetMap contributors, ODbL 1.0 (openstreetmap.org/copyright)": (
        "步行路网：© OpenStreetMap contributors（OpenStreetMap 贡献者），ODbL 1.0"
        "（openstreetmap.org/copyright）"
    ),
    "Synthetic demo district generated by data/demo.py": (
        "合成演示城区，由 data/demo.py 生成（合成数据，非真实）"
    ),
    "Facility layers from OpenStreetMap tags (proxies, see data/osm_tags.toml)": (
        "设施图层取自 OpenStreetMap 标签（替代指标，见 data/osm_tags.toml），并非真实设施名录"
    ),
}
#: Solver models by name.
MODEL_LABELS: Final[dict[str, tuple[str, str]]] = {
    "mclp": ("最大覆盖（MCLP）", "maximal covering (MCLP)"),
    "lscp": ("最少站点全覆盖（LSCP）", "fewest sites (LSCP)"),
    "pmedian": ("最短平均步行（p-中位）", "shortest mean walk (p-median)"),
    "capacitated": ("考虑容量的覆盖", "capacitated coverage"),
}


def model_label(model: str, lang: str) -> str:
    """A location model's name for readers; unknown names as given."""
    return _pick(MODEL_LABELS, model, lang)


def attributed_sources(sources: Sequence[str], lang: str = "en") -> list[str]:
    """Data source lines in ``lang``, with the OSM attribution added when OSM is named without it.

    Lines the CLI writes are translated; a user's own lines are shown as written.
    """
    lines = [SOURCE_LINES.get(str(s), str(s)) if lang == "zh" else str(s) for s in sources]
    names_osm = any("openstreetmap" in s.lower() or "osm" in s.lower().split() for s in lines)
    attributed = any("openstreetmap contributors" in s.lower() for s in lines)
    if names_osm and not attributed:
        lines.append(OSM_ATTRIBUTION)
    return lines


def check_lang(lang: str) -> str:
    """Return ``lang`` if it is supported; a user typo is an :class:`InputError`."""
    if lang not in LANGS:
        msg = f"language '{lang}' is not supported"
        raise InputError(msg, column="lang", fix=f"use one of {', '.join(LANGS)}")
    return lang


def text(key: str, lang: str, **values: object) -> str:
    """The label ``key`` in ``lang``, with ``{placeholders}`` filled from ``values``."""
    zh, en = LABELS[key]
    label = zh if lang == "zh" else en
    return label.format(**values) if values else label


def level_label(level: str, lang: str) -> str:
    """Name of a unit of analysis; unknown levels are shown as given."""
    zh, en = LEVEL_LABELS.get(level, (level, level))
    return zh if lang == "zh" else en


def target_group_label(group: str, lang: str) -> str:
    """Name of a target group column (``elderly`` -> 60岁及以上老人); unknown columns as given."""
    zh, en = TARGET_GROUP_LABELS.get(group, (group, group))
    return zh if lang == "zh" else en


def _pick(table: dict[str, tuple[str, str]], key: str, lang: str) -> str:
    zh, en = table.get(key, (key, key))
    return zh if lang == "zh" else en


def scope_label(scope: str, lang: str) -> str:
    """全区 / 各街道 / 各社区 for a target scope; unknown scopes as given."""
    return _pick(SCOPE_LABELS, scope, lang)


def measure_label(measure: str, lang: str) -> str:
    """Name of a target measure; unknown measures as given."""
    return _pick(MEASURE_LABELS, measure, lang)


def status_label(status: object, lang: str) -> str:
    """达标 / 未达标 for a target status (``met`` / ``not met``); others as given."""
    return _pick(STATUS_LABELS, str(status), lang)


def target_value_format(measure: str) -> str:
    """How a target's values read: a count of facilities, otherwise a share (percent)."""
    return "count" if measure == "facility_count" else "percent"


def fmt_target_value(value: float | None, measure: str) -> str:
    """A target's value or threshold: ``3`` facilities, or ``85.3%``."""
    return fmt_count(value) if measure == "facility_count" else fmt_percent(value)


def fmt_units_met(units: object, lang: str) -> str:
    """``"3/16"`` (units met / units) as "3/16 达标"; empty (district targets) as a dash."""
    text_ = "" if units is None or (isinstance(units, float) and math.isnan(units)) else str(units)
    if "/" not in text_:
        return DASH
    met, total = text_.split("/", 1)
    return text("units_met", lang, met=met, total=total)


def layer_label(spec: LayerSpec, lang: str) -> str:
    """A layer's name in ``lang`` (raw text: escape it before putting it into HTML)."""
    return spec.label(lang)


def fmt_percent(rate: float | None) -> str:
    """A rate as a percent with one decimal (``0.8534`` -> ``85.3%``); missing -> dash."""
    if rate is None or not math.isfinite(rate):
        return DASH
    return f"{rate * 100:.1f}%"


def fmt_people(value: float | None) -> str:
    """People as a whole number with thousands separators; missing -> dash."""
    if value is None or not math.isfinite(value):
        return DASH
    return f"{value:,.0f}"


def fmt_count(value: float | None) -> str:
    """A count of things (resident units, sites)."""
    return fmt_people(value)


def fmt_minutes(value: float | None, lang: str) -> str:
    """Minutes with one decimal; ``inf`` is unreachable, NaN a dash."""
    if value is None or math.isnan(value):
        return DASH
    if math.isinf(value):
        return text("unreachable", lang)
    return f"{value:.1f}"


def fmt_number(value: float | None, decimals: int = 1) -> str:
    """Any other quantity (km², metres, speeds, indices) with fixed decimals."""
    if value is None or not math.isfinite(value):
        return DASH
    return f"{value:,.{decimals}f}"


def fmt_threshold(value: float | None) -> str:
    """A minutes threshold as written in the layer table (``15``, ``7.5``)."""
    if value is None or not math.isfinite(value):
        return DASH
    return f"{value:g}"


def fmt_bool(value: object, lang: str) -> str:
    """Yes or no in ``lang``."""
    return text("yes" if bool(value) else "no", lang)
