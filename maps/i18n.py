"""The zh/en message catalogue and number formats shared by the map, the report and the charts.

District leaders read Chinese, so ``zh`` is the default everywhere; ``en`` serves reviewers and
the GIS team.  Numbers are formatted in one place so that the map popups, the report tables and
the spreadsheet agree to the digit: percent with one decimal, people as whole numbers with
thousands separators, minutes with one decimal, ``inf`` shown as "unreachable".
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from layers.errors import InputError
from layers.spec import TARGET_GROUP_LABELS, LayerSpec

LANGS: Final = ("zh", "en")

#: The banner every output of synthetic (demo) data carries, in both languages on purpose.
SYNTHETIC_BANNER: Final = "合成数据 / SYNTHETIC DATA"

#: The one catalogue of reader-facing words: key -> (Chinese, English).  The map, the report and
#: the charts all read it through :func:`text`; keys are unique across all of them (the report's
#: "resident units off the network" is ``units_unsnapped``, the map's "too far" is ``unsnapped``),
#: and ``tests/test_messages.py`` checks that every key used in code or templates is here, in
#: both languages, with no stray English inside the Chinese.
MESSAGES: Final[dict[str, tuple[str, str]]] = {
    # map layers, fields and shared words (map, report, charts)
    "facilities": ("设施", "facilities"),
    "service_areas": ("步行服务范围", "walking service area"),
    "residents": ("居民点步行时间", "residents: walking minutes"),
    "gaps": ("服务缺口", "service gaps"),
    "coverage_map": ("覆盖率", "coverage"),
    "suggestions": ("建议新增选址", "suggested new sites"),
    "legend": ("图例", "Legend"),
    "sources": ("数据来源", "Data sources"),
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
    "nearest_street": ("邻近道路", "nearest street"),
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
    "layers": ("图层", "Layers"),
    "fold_panel": ("收起/展开图层列表", "hide/show the layer list"),
    "shared_layers": ("规划目标与底图", "targets and base map"),
    "basemap": ("底图", "base map"),
    "streets": ("步行网络（按步行时间着色）", "walk network (by walking minutes)"),
    "legend_dots_lines": ("圆点为居民点，线为街道", "dots: residents; lines: streets"),
    # residents summed to H3 hexagons (large studies)
    "residents_hex": ("居民（六边形网格汇总）", "residents (summed to hexagons)"),
    "legend_hex": (
        "居民点过多，已按六边形网格（边长约 {edge} 米）汇总；颜色为 {m:g} 分钟内可达的服务对象"
        "人口占比，点击网格查看人口与平均步行时间",
        "too many residents to draw one by one: summed to hexagons (edge about {edge} m), "
        "coloured by the share of the target population within {m:g} min; click a hexagon for "
        "its population and mean minutes",
    ),
    "covered_share": ("目标时间内人口占比", "share within the goal"),
    "gaps_worst": (
        "服务缺口（最严重的 {n} 处，共 {total} 处）",
        "service gaps (worst {n} of {total})",
    ),
    "legend_unsnapped_facility": (
        "空心：离路网过远的设施（不参与计算）",
        "hollow: facility too far from any street (serves no one)",
    ),
    # the report: sections, tables, notes, data checks
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
    "chk_osm_proxy": (
        "{layer}：设施取自 OpenStreetMap 标签（替代指标），并非真实设施名录",
        "{layer}: facilities taken from OpenStreetMap tags (proxies), not a real facility list",
    ),
    "chk_osm_proxy_detail": (
        "标签见 data/osm_tags.toml；覆盖率只说明方法，不代表该区真实服务水平",
        "tags in data/osm_tags.toml; the rates show the method, not the district's real service",
    ),
    "layer": ("图层", "layer"),
    "target_group": ("服务对象", "target group"),
    "speed": ("步行速度（公里/小时）", "walking speed (km/h)"),
    "thresholds": ("统计阈值（分钟）", "thresholds (min)"),
    "headline_min": ("目标（分钟）", "goal (min)"),
    "cutoff_m": ("最大步行距离（米）", "longest walk (m)"),
    "mean_minutes": ("平均步行时间（分钟）", "mean walking minutes"),
    "p90_minutes": ("90%分位步行时间（分钟）", "90th percentile minutes"),
    "units_unsnapped": ("离路网过远的居民点", "resident units off the network"),
    "units_unreachable": ("路网不可达的居民点", "resident units unreachable"),
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
    # report sheets (XLSX; at most 31 characters, no []:*?/\)
    "sheet_targets": ("规划目标", "Targets"),
    "sheet_target_units": ("目标未达标单元", "Targets - worst units"),
    "sheet_headline": ("总体覆盖", "Headline"),
    "sheet_thresholds": ("分阈值覆盖", "By threshold"),
    "sheet_streets": ("街道覆盖率", "Sub-districts"),
    "sheet_street_detail": ("街道明细", "Sub-district detail"),
    "sheet_communities": ("社区明细", "Communities"),
    "sheet_gaps": ("服务缺口", "Gaps"),
    "sheet_runs": ("选址前后", "Before-after"),
    "sheet_suggestions": ("建议选址", "Suggested sites"),
    "sheet_equity": ("公平性", "Equity"),
    "sheet_method": ("分析参数", "Parameters"),
    "sheet_sources": ("数据来源", "Sources"),
    "sheet_checks": ("数据核查", "Data checks"),
    "sheet_loads": ("超负荷设施", "Over-subscribed"),
    # charts
    "chart_by_area": ("各街道覆盖率（{m}分钟目标）", "Coverage by sub-district (goal {m} min)"),
    "chart_by_area_x": ("服务对象覆盖率", "share of target population covered"),
    "chart_cdf": ("步行时间分布（按服务对象人口加权）", "Walking minutes (population-weighted)"),
    "chart_cdf_x": ("到最近设施的步行时间（分钟）", "walking minutes to the nearest facility"),
    "chart_cdf_y": ("在该时间内可达的服务对象比例", "share of target population within"),
    "chart_curve": ("新增站点数与覆盖率", "Coverage vs number of new sites"),
    "chart_curve_x": ("新增站点数", "number of new sites"),
    "chart_curve_y": ("全区覆盖率", "district coverage"),
    "chart_goal": ("{m}分钟目标", "{m}-min goal"),
    # units of analysis (``level`` of metrics and areas)
    "level_district": ("全区", "district"),
    "level_street": ("街道", "sub-district (jiedao)"),
    "level_community": ("社区", "community (shequ)"),
    "level_hex": ("网格", "hexagon"),
    # planning targets: scopes, measures, statuses
    "scope_district": ("全区", "district"),
    "scope_street": ("各街道", "each sub-district"),
    "scope_community": ("各社区", "each community"),
    "measure_facility_count": ("设施数量", "facilities"),
    "measure_coverage_rate": ("覆盖率", "coverage rate"),
    "measure_communities_all_within": ("全覆盖社区占比", "communities fully covered"),
    "status_met": ("达标", "met"),
    "status_not_met": ("未达标", "not met"),
    # location models by name
    "model_mclp": ("最大覆盖（MCLP）", "maximal covering (MCLP)"),
    "model_lscp": ("最少站点全覆盖（LSCP）", "fewest sites (LSCP)"),
    "model_pmedian": ("最短平均步行（p-中位）", "shortest mean walk (p-median)"),
    "model_capacitated": ("考虑容量的覆盖", "capacitated coverage"),
    # the map's title
    "map_subtitle": (
        "15分钟公共服务圈 · 步行覆盖图",
        "15-minute service circles · walking coverage",
    ),
    # why a target cannot be met (coverage.targets.Unreachable, by code)
    "reason_coverage_out_of_reach": (
        "「{label}」{where}：即使启用全部候选点，{m}分钟内最多覆盖目标人群的{share}"
        "（{people}人不在任何候选点的可达范围内）",
        "“{label}”, {where}: even with every candidate site open, at most {share} of the target "
        "group is within {m} minutes ({people} people are out of reach of every candidate)",
    ),
    "reason_communities_out_of_reach": (
        "「{label}」{where}：仅{possible}/{total}个社区可全部在{m}分钟内覆盖；"
        "没有候选点能到达以下社区的全部居民：{blocked}",
        "“{label}”, {where}: only {possible} of {total} communities can be fully covered within "
        "{m} minutes; no candidate reaches every resident of {blocked}",
    ),
    "reason_where_district": ("全区", "the district"),
    "list_sep": ("、", ", "),
    "reason_sep": ("; ", "; "),
    "label_sep": ("：", ": "),
    # the studio page (maps/studio), read by its script as TEXTS[lang][key without studio_]
    "studio_studio": ("规划工作台", "Planner's studio"),
    "studio_synthetic": ("合成示例数据，非真实情况", "Synthetic demo data, not a real place"),
    "studio_layer": ("设施图层", "Facility layer"),
    "studio_mode_view": ("浏览", "View"),
    "studio_mode_add": ("点击地图新增设施", "Click the map to add a site"),
    "studio_add_hint": (
        "在地图上点击放置新设施；拖动设施可移动",
        "Click the map to place a site; drag one to move it",
    ),
    "studio_undo": ("撤销", "Undo"),
    "studio_redo": ("重做", "Redo"),
    "studio_remove": ("删除此设施", "Remove this site"),
    "studio_coverage": ("覆盖率", "Coverage"),
    "studio_within": ("分钟内", "min"),
    "studio_facilities": ("设施数", "Sites"),
    "studio_population": ("目标人口", "Target population"),
    "studio_covered": ("已覆盖", "Covered"),
    "studio_street_table": ("各街道覆盖率", "Coverage by 街道"),
    "studio_street": ("街道", "街道"),
    "studio_targets": ("规划目标", "Planning targets"),
    "studio_met": ("达标", "met"),
    "studio_not met": ("未达标", "not met"),
    "studio_not_met": ("未达标", "not met"),
    "studio_shortfall": ("缺口人口", "Shortfall"),
    "studio_sites_needed": ("至少需新增", "Sites needed"),
    "studio_speed": ("步行速度（公里/小时）", "Walking speed km/h"),
    "studio_minutes": ("时间阈值（分钟）", "Minutes"),
    "studio_apply": ("应用", "Apply"),
    "studio_suggest": ("选址建议", "Suggest sites"),
    "studio_model": ("模型", "Model"),
    "studio_mclp": ("MCLP 最大覆盖", "MCLP max coverage"),
    "studio_lscp": ("LSCP 最少设施", "LSCP fewest sites"),
    "studio_pmedian": ("p-中位 最短平均步行", "p-median shortest walk"),
    "studio_n_sites": ("新增数量", "New sites"),
    "studio_run": ("计算", "Run"),
    "studio_accept": ("采纳", "Accept"),
    "studio_added": ("新增覆盖人口", "People added"),
    "studio_gaps": ("服务盲区", "Gap zones"),
    "studio_residents": ("居民点（按步行分钟着色）", "Residents (walking minutes)"),
    "studio_network": ("步行网络（按分钟着色）", "Walk network (minutes)"),
    "studio_areas": ("街道（按覆盖率着色）", "街道 (coverage)"),
    "studio_legend_minutes": ("步行分钟", "Walking minutes"),
    "studio_legend_coverage": ("街道覆盖率", "街道 coverage"),
    "studio_unreached": ("不可达", "unreached"),
    "studio_scenarios": ("方案", "Scenarios"),
    "studio_scenario_name": ("方案名称", "Scenario name"),
    "studio_save": ("保存", "Save"),
    "studio_open": ("打开", "Open"),
    "studio_compare": ("对比", "Compare"),
    "studio_current": ("当前方案", "Current scenario"),
    "studio_export": ("导出完整成果", "Export full outputs"),
    "studio_exported": ("已导出到", "Exported to"),
    "studio_gain": ("新获得服务", "Gain access"),
    "studio_lose": ("失去服务", "Lose access"),
    "studio_working": ("计算中…", "Working…"),
    "studio_steps_gaps": ("识别盲区", "finding gaps"),
    "studio_steps_candidates": ("生成候选点", "candidate sites"),
    "studio_steps_solving": ("求解模型", "solving"),
    "studio_steps_first_answer": ("初步方案", "first answer"),
    "studio_first_answer": (
        "初步方案：新增覆盖 {objective} 人，最多可达 {bound} 人，正在证明最优…",
        "first answer: {objective} more people within reach, at most {bound}; proving it…",
    ),
    "studio_steps_done": ("完成", "done"),
    "studio_error": ("错误", "Error"),
    "studio_lang": ("English", "中文"),
    "studio_new_site": ("新设施", "New site"),
    "studio_district": ("全区", "District"),
    "studio_saved": ("已保存", "Saved"),
    "studio_min": ("分钟", "min"),
    "studio_target": ("目标", "Target"),
    "studio_value": ("现状 / 要求", "Now / required"),
    "studio_facility_layer": ("设施", "Facilities"),
    # the studio's upload form (a new study from files)
    "studio_upload": ("新建研究（上传文件）", "New study (upload files)"),
    "studio_upload_title": ("研究名称", "Study title"),
    "studio_upload_residents": ("居民点", "Residents"),
    "studio_upload_layers": ("设施图层", "Facility layers"),
    "studio_upload_add_layer": ("添加图层", "Add a layer"),
    "studio_upload_areas": ("街道范围（可选）", "街道 polygons (optional)"),
    "studio_upload_network": ("步行路网", "Street network"),
    "studio_upload_sheet": ("图层或工作表名", "Layer or sheet name"),
    "studio_upload_columns": ("列名对应", "Column mapping"),
    "studio_upload_coords": ("文件自带坐标系", "File's own coordinates"),
    "studio_upload_go": ("上传并开始", "Upload and start"),
    "studio_upload_reading": ("正在读取", "Reading"),
    "studio_upload_done": ("已切换到新研究", "Switched to the new study"),
    "studio_upload_limits": (
        "单个文件不超过 {file} 兆字节，合计不超过 {study} 兆字节",
        "At most {file} MB a file, {study} MB in all",
    ),
    "studio_upload_hint": (
        "形状文件请把各组成文件打包成一个压缩包上传；路网支持 .osm.pbf 与 GraphML 等格式。",
        "Upload a Shapefile as one .zip of its files; the network as .osm.pbf, .osm or .graphml.",
    ),
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


def model_label(model: str, lang: str) -> str:
    """A location model's name for readers; unknown names as given."""
    return _pick("model_", model, lang)


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
    """The message ``key`` in ``lang``, with ``{placeholders}`` filled from ``values``.

    The one lookup of the catalogue: an unknown key is a programming error (``KeyError``).
    """
    zh, en = MESSAGES[key]
    label = zh if lang == "zh" else en
    return label.format(**values) if values else label


def level_label(level: str, lang: str) -> str:
    """Name of a unit of analysis; unknown levels are shown as given."""
    return _pick("level_", level, lang)


def target_group_label(group: str, lang: str) -> str:
    """Name of a target group column (``elderly`` -> 60岁及以上老人); unknown columns as given."""
    zh, en = TARGET_GROUP_LABELS.get(group, (group, group))
    return zh if lang == "zh" else en


def _pick(family: str, code: str, lang: str) -> str:
    """The message ``family + code`` (spaces as ``_``); a code the catalogue lacks as given."""
    key = family + code.replace(" ", "_")
    return text(key, lang) if key in MESSAGES else code


def scope_label(scope: str, lang: str) -> str:
    """全区 / 各街道 / 各社区 for a target scope; unknown scopes as given."""
    return _pick("scope_", scope, lang)


def measure_label(measure: str, lang: str) -> str:
    """Name of a target measure; unknown measures as given."""
    return _pick("measure_", measure, lang)


def status_label(status: object, lang: str) -> str:
    """达标 / 未达标 for a target status (``met`` / ``not met``); others as given."""
    return _pick("status_", str(status), lang)


def target_reason(reason: object, label: str, lang: str) -> str:
    """Why a target cannot be met, in words, from the coded ``reason`` of the targets table.

    ``reason`` is the JSON text :meth:`coverage.targets.WhatItTakes.reason_json` stores (a list
    of :class:`coverage.targets.Unreachable` fields): one sentence per unit, joined.  Empty or
    missing reasons give "".  Text that is not such JSON (a result written by hand) is shown as
    given rather than dropped.
    """
    if reason is None or (isinstance(reason, float) and math.isnan(reason)):
        return ""
    raw = str(reason).strip()
    if not raw:
        return ""
    try:
        items = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(items, list):
        return raw
    return text("reason_sep", lang).join(
        _reason_sentence(item, label, lang) for item in items if isinstance(item, dict)
    )


def _reason_sentence(item: Mapping[str, Any], label: str, lang: str) -> str:
    code = str(item.get("code", ""))
    unit = str(item.get("unit", ""))
    values: dict[str, object] = {
        "label": label,
        "where": unit or text("reason_where_district", lang),
        "m": fmt_threshold(_float(item.get("minutes"))),
    }
    if code == "coverage_out_of_reach":
        values["share"] = fmt_percent(_float(item.get("best_share")))
        values["people"] = fmt_people(_float(item.get("people_out_of_reach")))
    elif code == "communities_out_of_reach":
        values["possible"] = int(item.get("possible", 0))
        values["total"] = int(item.get("total", 0))
        values["blocked"] = text("list_sep", lang).join(map(str, item.get("blocked", ())))
    else:  # a code this version does not know: say what there is
        return f"{label}{text('label_sep', lang)}{code}"
    return text(f"reason_{code}", lang, **values)


def _float(value: object) -> float | None:
    try:
        return None if value is None else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


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
