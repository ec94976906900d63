"""One zh/en message catalogue (maps.i18n.MESSAGES) serves the map, the report and the charts."""

from __future__ import annotations

import re
from pathlib import Path

from maps import charts, i18n
from maps.i18n import MESSAGES

MAPS = Path(__file__).parents[1] / "maps"
#: Latin words a Chinese text may carry: names of models, data, formats and the export tables.
ALLOWED_LATIN = {
    "MCLP", "LSCP", "OSM", "ODbL", "GCJ-02", "2SFCA", "H3", "GIS", "p-", "OpenStreetMap",
    "GraphML", ".osm.pbf", "walk/all", "target_units", "SYNTHETIC", "DATA",
    "data/osm_tags.toml",  # a file name, as written on disk
}  # fmt: skip
_LATIN = re.compile(r"[.\w/-]*[A-Za-z][\w./-]*", re.ASCII)
#: Lookups in code: text("key" ...), charts' _label("key") (chart_ keys); templates: t("key").
_CODE_CALLS = re.compile(r"""\b(text|_label|_t)\(\s*["']([a-z0-9_]+)["']\s*[,)]""")
_TEMPLATE_CALLS = re.compile(r"""\bt\(\s*["']([a-z0-9_]+)["']\s*[,)]""")


def _used_keys() -> set[str]:
    used = set()
    for path in MAPS.glob("*.py"):
        for fn, key in _CODE_CALLS.findall(path.read_text(encoding="utf-8")):
            used.add(f"chart_{key}" if fn == "_label" else key)
    for path in (MAPS / "templates").glob("*.j2"):
        used |= set(_TEMPLATE_CALLS.findall(path.read_text(encoding="utf-8")))
    return used


def test_every_message_has_both_languages():
    for key, pair in MESSAGES.items():
        assert isinstance(pair, tuple) and len(pair) == 2, key
        zh, en = pair
        assert zh.strip() and en.strip(), key
        # the same placeholders in both languages
        assert set(re.findall(r"{(\w+)", zh)) == set(re.findall(r"{(\w+)", en)), key


def test_every_key_used_exists():
    used = _used_keys()
    assert len(used) > 100  # the parse found the lookups
    assert used - MESSAGES.keys() == set()
    # keys built at run time: sheet names, figure captions, chart titles, coded families
    from maps.report_tables import report_tables
    from tests.fixtures_result import make_result

    tables = report_tables(make_result())
    for t in tables:
        assert f"sheet_{t.key}" in MESSAGES
    for chart in charts.report_charts(make_result(), lang="en"):
        assert f"cap_{chart.key}" in MESSAGES
    for code in ("coverage_out_of_reach", "communities_out_of_reach"):
        assert f"reason_{code}" in MESSAGES
    assert {"mclp", "lscp", "pmedian", "capacitated"} <= {
        k.removeprefix("model_") for k in MESSAGES if k.startswith("model_")
    }


def test_family_lookups_read_the_catalogue():
    assert i18n.status_label("not met", "zh") == MESSAGES["status_not_met"][0]
    assert i18n.scope_label("street", "en") == MESSAGES["scope_street"][1]
    assert i18n.level_label("community", "zh") == MESSAGES["level_community"][0]
    assert i18n.model_label("mclp", "zh") == "最大覆盖（MCLP）"
    assert i18n.model_label("my_model", "zh") == "my_model"  # unknown codes as given


#: Texts that name the other language on purpose (the studio's language switch).
SWITCHES = {"studio_lang"}


def test_chinese_texts_carry_no_stray_english():
    for key, (zh, _en) in MESSAGES.items():
        if key in SWITCHES:
            continue
        plain = re.sub(r"{[^}]*}", "", zh)  # placeholders are filled with data
        stray = set(_LATIN.findall(plain)) - ALLOWED_LATIN
        assert not stray, f"{key}: {stray}"


def test_no_other_zh_en_tables_in_maps():
    """No second catalogue: no other dict of (zh, en) pairs in maps/."""
    pair_table = re.compile(r"dict\[str, tuple\[str, str\]\]")
    for path in MAPS.rglob("*.py"):  # the studio's too
        found = pair_table.findall(path.read_text(encoding="utf-8"))
        allowed = {"i18n.py": 1, "texts.py": 1}  # texts.py: a view of the catalogue's studio_*
        assert len(found) == allowed.get(path.name, 0), path.name
