"""The studio page's words, zh and en side by side (the page switches between them).

Kept apart from :mod:`maps.i18n` (the batch outputs' texts) so that the two can change on
their own; layer names come from the layer table (``label_zh`` / ``label_en``).
"""

from __future__ import annotations

#: key -> (zh, en)
PAIRS: dict[str, tuple[str, str]] = {
    "studio": ("规划工作台", "Planner's studio"),
    "synthetic": ("合成示例数据，非真实情况", "Synthetic demo data, not a real place"),
    "layer": ("设施图层", "Facility layer"),
    "mode_view": ("浏览", "View"),
    "mode_add": ("点击地图新增设施", "Click the map to add a site"),
    "add_hint": (
        "在地图上点击放置新设施；拖动设施可移动",
        "Click the map to place a site; drag one to move it",
    ),
    "undo": ("撤销", "Undo"),
    "redo": ("重做", "Redo"),
    "remove": ("删除此设施", "Remove this site"),
    "coverage": ("覆盖率", "Coverage"),
    "within": ("分钟内", "min"),
    "facilities": ("设施数", "Sites"),
    "population": ("目标人口", "Target population"),
    "covered": ("已覆盖", "Covered"),
    "street_table": ("各街道覆盖率", "Coverage by 街道"),
    "street": ("街道", "街道"),
    "targets": ("规划目标", "Planning targets"),
    "met": ("达标", "met"),
    "not met": ("未达标", "not met"),
    "not_met": ("未达标", "not met"),
    "shortfall": ("缺口人口", "Shortfall"),
    "sites_needed": ("至少需新增", "Sites needed"),
    "speed": ("步行速度 km/h", "Walking speed km/h"),
    "minutes": ("时间阈值（分钟）", "Minutes"),
    "apply": ("应用", "Apply"),
    "suggest": ("选址建议", "Suggest sites"),
    "model": ("模型", "Model"),
    "mclp": ("MCLP 最大覆盖", "MCLP max coverage"),
    "lscp": ("LSCP 最少设施", "LSCP fewest sites"),
    "pmedian": ("p-中位 最短平均步行", "p-median shortest walk"),
    "n_sites": ("新增数量", "New sites"),
    "run": ("计算", "Run"),
    "accept": ("采纳", "Accept"),
    "added": ("新增覆盖人口", "People added"),
    "gaps": ("服务盲区", "Gap zones"),
    "residents": ("居民点（按步行分钟着色）", "Residents (walking minutes)"),
    "network": ("步行网络（按分钟着色）", "Walk network (minutes)"),
    "areas": ("街道（按覆盖率着色）", "街道 (coverage)"),
    "legend_minutes": ("步行分钟", "Walking minutes"),
    "legend_coverage": ("街道覆盖率", "街道 coverage"),
    "unreached": ("不可达", "unreached"),
    "scenarios": ("方案", "Scenarios"),
    "scenario_name": ("方案名称", "Scenario name"),
    "save": ("保存", "Save"),
    "open": ("打开", "Open"),
    "compare": ("对比", "Compare"),
    "current": ("当前方案", "Current scenario"),
    "export": ("导出完整成果", "Export full outputs"),
    "exported": ("已导出到", "Exported to"),
    "gain": ("新获得服务", "Gain access"),
    "lose": ("失去服务", "Lose access"),
    "working": ("计算中…", "Working…"),
    "steps_gaps": ("识别盲区", "finding gaps"),
    "steps_candidates": ("生成候选点", "candidate sites"),
    "steps_solving": ("求解模型", "solving"),
    "steps_done": ("完成", "done"),
    "error": ("错误", "Error"),
    "lang": ("English", "中文"),
    "new_site": ("新设施", "New site"),
    "district": ("全区", "District"),
    "saved": ("已保存", "Saved"),
}

#: The page reads ``TEXTS[lang][key]``.
TEXTS: dict[str, dict[str, str]] = {
    "zh": {k: v[0] for k, v in PAIRS.items()},
    "en": {k: v[1] for k, v in PAIRS.items()},
}
