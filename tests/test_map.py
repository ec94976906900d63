"""The interactive map: self-contained (no CDN), complete, escaped, shifted for GCJ-02 tiles."""

from __future__ import annotations

import html
import json
import math
import re
from html.parser import HTMLParser

import folium
import numpy as np
import pytest
import shapely
import shapely.geometry
from hypothesis import given
from hypothesis import strategies as st

from layers.crs import wgs84_to_gcj02
from layers.errors import InputError
from maps import coverage_map as cm
from maps.coverage_map import build_map, page_text, render_map
from tests.fixtures_result import HOSTILE, make_result

CDN_HOSTS = ("jsdelivr", "cdnjs", "unpkg", "code.jquery", "bootstrapcdn", "netdna", "googleapis")


@pytest.fixture(scope="module")
def result():
    return make_result()


@pytest.fixture(scope="module")
def hostile():
    return make_result(hostile=True)


def _geojson_layers(m: folium.Map) -> list[folium.GeoJson]:
    out = []

    def walk(el):
        for child in el._children.values():
            if isinstance(child, folium.GeoJson):
                out.append(child)
            walk(child)

    walk(m)
    return out


def _style(g: folium.GeoJson, feature: dict) -> dict:
    """The style the browser gives ``feature`` (class lookup hook or folium style_function)."""
    if g.on_each_feature is not None:
        table = re.search(r"const styles = (\[.*?\]);", g.on_each_feature.js_code).group(1)
        return json.loads(table)[feature["properties"].get("s", 0)]
    return g.style_function(feature)


def _groups(m: folium.Map) -> dict[str, folium.FeatureGroup]:
    return {c.layer_name: c for c in m._children.values() if isinstance(c, folium.FeatureGroup)}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Tags()
    p.feed(page)
    return p.tags


def test_map_file_is_self_contained(result, tmp_path):
    path = render_map(result, tmp_path / "map.html", basemap="none")
    page = path.read_text(encoding="utf-8")
    tags = _tags(page)
    assert not [a for t, a in tags if t == "script" and a.get("src")], "no external script"
    assert not [a for t, a in tags if t == "link"], "no external stylesheet"
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page), "no CSS url() to the network"
    assert not any(h in page for h in CDN_HOSTS)
    assert "$(" not in page and "AwesomeMarkers" not in page  # nothing needs jQuery or plugins
    assert 't.version="1.9.4"' in page  # Leaflet itself is inline
    assert "url(data:image/png;base64," in page  # layer-control icon inlined
    assert "sourceMappingURL" not in page
    assert "tile.openstreetmap.org" not in page and "autonavi" not in page
    assert path.stat().st_size < 1_000_000


def test_osm_and_gcj02_basemaps_only_add_tile_urls(result):
    osm = page_text(build_map(result, basemap="osm"))
    assert "https://tile.openstreetmap.org/{z}/{x}/{y}.png" in osm
    amap = page_text(build_map(result, basemap="gcj02"))
    assert cm.AMAP_TILES.replace("&", "\\u0026") in amap  # JSON-escaped in the script
    assert "tile.openstreetmap.org" not in amap
    for page in (osm, amap):
        assert not any(h in page for h in CDN_HOSTS)
        assert not [a for t, a in _tags(page) if t == "script" and a.get("src")]


def test_layers_per_kind_with_control(result):
    m = build_map(result)
    groups = _groups(m)
    for spec in result.specs.values():
        names = [n for n in groups if n.startswith(html.escape(spec.label_zh))]
        assert any("设施" in n for n in names)
        assert any("服务范围" in n for n in names)
        assert any("居民点" in n for n in names)
        assert any("覆盖率" in n for n in names)
    # the grouped panel replaces folium's flat layer control (issue 12: 31 loose checkboxes)
    assert not any(isinstance(c, folium.LayerControl) for c in m._children.values())
    assert isinstance(m._children["sc_layers"], cm.LayerPanel)
    page = page_text(m)
    assert "L.control.scale()" in page
    assert "sc-legend" in page and "sc-title" in page
    # only the first kind's rings, residents and gaps are on at start; facilities always
    first = next(iter(result.specs.values()))
    for name, group in groups.items():
        if "设施" in name or "建议" in name:
            assert group.show
        elif "覆盖率" in name:
            assert not group.show
        else:
            assert group.show == name.startswith(html.escape(first.label_zh))


def test_facility_popups_show_name_and_capacity(result):
    m = build_map(result)
    fac_layers = [g for g in _geojson_layers(m) if "cap" in g.data["features"][0]["properties"]]
    props = [f["properties"] for g in fac_layers for f in g.data["features"]]
    assert len(props) == len(result.facilities)
    by_id = {p["fid"]: p for p in props}
    for row in result.facilities.itertuples():
        p = by_id[row.facility_id]
        assert p["name"] == row.name
        assert p["cap"] == ("未知" if math.isnan(row.capacity) else f"{row.capacity:,.0f}")
    colours = {_style(g, g.data["features"][0])["fillColor"] for g in fac_layers}
    assert colours == {s.colour for s in result.specs.values()}  # distinct colour per kind


def test_service_area_rings_are_the_dissolved_rows(result):
    m = build_map(result)
    ring_layers = [g for g in _geojson_layers(m) if "label" in g.data["features"][0]["properties"]]
    assert len(ring_layers) == len(result.specs)
    dissolved = result.service_areas[result.service_areas["facility_id"] == ""]
    assert sum(len(g.data["features"]) for g in ring_layers) == len(dissolved)
    for g in ring_layers:
        labels = [f["properties"]["label"] for f in g.data["features"]]
        minutes = [float(re.search(r"([\d.]+) 分钟", s).group(1)) for s in labels]
        assert minutes == sorted(minutes, reverse=True)  # largest drawn first, smaller on top


def test_resident_classes_follow_the_result(result):
    m = build_map(result)
    for spec in result.specs.values():
        layer = next(
            g
            for g in _geojson_layers(m)
            if "rid" in g.data["features"][0]["properties"]
            and g.data["features"][0]["properties"]["min"]
            == cm.i18n.fmt_minutes(float(result.residents[f"minutes_{spec.kind}"].iloc[0]), "zh")
        )
        n_within = len([t for t in spec.thresholds_min if t <= spec.headline_min])
        res = result.residents
        for feat, row in zip(layer.data["features"], res.itertuples(), strict=True):
            cls = feat["properties"]["s"]
            minutes = getattr(row, f"minutes_{spec.kind}")
            covered = getattr(row, f"covered_{spec.kind}")
            if not row.snapped:
                assert cls == n_within + 2
            elif math.isinf(minutes):
                assert cls == n_within + 1
            elif not covered:
                assert cls == n_within
            else:
                assert cls < n_within
                assert minutes <= spec.thresholds_min[cls]
            style = _style(layer, feat)
            assert style["fill"] is True
            assert style["radius"] == (6 if cls >= n_within else 5)  # uncovered stand out


def test_coordinates_rounded_and_shifted_for_gcj02(result):
    fac = result.facilities
    lon, lat = fac.geometry.x.to_numpy(), fac.geometry.y.to_numpy()
    glon, glat = wgs84_to_gcj02(lon, lat)
    for basemap, (ex, ey) in {"osm": (lon, lat), "none": (lon, lat), "gcj02": (glon, glat)}.items():
        m = build_map(result, basemap=basemap)
        pts = {}
        for g in _geojson_layers(m):
            for f in g.data["features"]:
                if "fid" in f["properties"]:
                    pts[f["properties"]["fid"]] = f["geometry"]["coordinates"]
        for fid, x, y in zip(fac["facility_id"], ex, ey, strict=True):
            assert pts[fid] == [round(x, 6), round(y, 6)]
    # the shift is a few hundred metres in Hangzhou: overlays really move
    assert np.abs(glon - lon).max() > 0.003


def test_rounding_keeps_six_decimals(result):
    page = page_text(build_map(result, basemap="none"))
    coords = re.findall(r"\[(1[12]\d\.\d+), (30\.\d+)\]", page)
    assert coords
    assert all(len(x.split(".")[1]) <= 6 and len(y.split(".")[1]) <= 6 for x, y in coords)


def test_languages_and_banner(result):
    zh = page_text(build_map(result, lang="zh"))
    en = page_text(build_map(result, lang="en"))
    assert "步行服务范围" in zh and "walking service area" not in zh
    assert "walking service area" in en and "步行服务范围" not in en
    assert "Community canteen" in en
    for page in (zh, en):
        assert "合成数据 / SYNTHETIC DATA" in page
        assert "© OpenStreetMap contributors, ODbL" in page
    from dataclasses import replace

    real = page_text(build_map(replace(result, synthetic=False)))
    assert "SYNTHETIC DATA" not in real


def test_title_is_the_study_name(result):
    page = page_text(build_map(result))
    assert f"<title>{result.title}</title>" in page
    assert result.title in page


def test_suggested_sites_carry_rank_and_gain(result):
    m = build_map(result)
    layers = [g for g in _geojson_layers(m) if "added" in g.data["features"][0]["properties"]]
    props = [f["properties"] for g in layers for f in g.data["features"]]
    assert len(props) == len(result.suggestions)
    for p, row in zip(
        props, result.suggestions.sort_values(["kind", "rank"]).itertuples(), strict=True
    ):
        assert p["rank"] == str(row.rank)
        assert p["added"] == f"{row.added_population:,.0f}"
        assert p["after"] == f"{row.coverage_rate_after * 100:.1f}%"
    badges = [g.style_function(f)["html"] for g in layers for f in g.data["features"]]
    assert all(
        re.fullmatch(r'<div class="sc-site" style="background:#[0-9a-f]{6}">\d+</div>', b)
        for b in badges
    )


def test_gaps_and_choropleth(result):
    m = build_map(result)
    gap_layers = [g for g in _geojson_layers(m) if "gid" in g.data["features"][0]["properties"]]
    assert sum(len(g.data["features"]) for g in gap_layers) == len(result.gaps)
    area_layers = [g for g in _geojson_layers(m) if "parent" in g.data["features"][0]["properties"]]
    assert len(area_layers) == 2 * len(result.specs)  # street and community level per kind
    for g in area_layers:
        for f in g.data["features"]:
            rate = f["properties"]["rate"]
            cls = f["properties"]["s"]
            if rate == "—":
                assert cls == len(cm.CHOROPLETH)
            else:
                value = float(rate.rstrip("%")) / 100
                assert value >= cm.CHOROPLETH[cls][0] - 0.0005


@given(st.floats(min_value=0, max_value=1), st.floats(min_value=0, max_value=1))
def test_choropleth_classes_are_monotone(a, b):
    lo, hi = sorted((a, b))
    assert cm.choropleth_class(hi) <= cm.choropleth_class(lo)
    assert cm.choropleth_class(float("nan")) == len(cm.CHOROPLETH)


def test_hostile_text_is_escaped_everywhere(hostile, tmp_path):
    page = render_map(hostile, tmp_path / "h.html", basemap="none", lang="zh").read_text("utf-8")
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the title and legend, as text
    # Leaflet inserts popup/tooltip values and layer names as HTML: none may hold markup
    m = build_map(hostile, basemap="none")
    for name in _groups(m):
        assert "<" not in name and ">" not in name
    for g in _geojson_layers(m):
        for f in g.data["features"]:
            for key, value in f["properties"].items():
                if isinstance(value, str):
                    assert "<" not in value and ">" not in value, key
        popup = [c for c in g._children.values() if isinstance(c, folium.GeoJsonPopup)]
        for p in popup:
            assert all("<" not in a for a in p.aliases)
    names = {
        f["properties"]["name"]
        for g in _geojson_layers(m)
        for f in g.data["features"]
        if "name" in f["properties"]
    }
    assert html.escape(hostile.facilities["name"].iloc[0]) in names
    assert HOSTILE in hostile.facilities["name"].iloc[0]


def test_hostile_colour_is_not_injected(result):
    from dataclasses import replace

    spec = next(iter(result.specs.values()))
    bad = replace(
        result, specs={**result.specs, spec.kind: replace(spec, colour='red"><script>x()</script>')}
    )
    page = page_text(build_map(bad))
    assert "<script>x()" not in page


def test_refuses_to_overwrite_and_bad_options(result, tmp_path):
    path = tmp_path / "m.html"
    render_map(result, path, basemap="none")
    before = path.read_bytes()
    with pytest.raises(InputError, match="exists"):
        render_map(result, path, basemap="none")
    assert path.read_bytes() == before
    render_map(result, path, basemap="none", lang="en", force=True)
    assert path.read_bytes() != before
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    with pytest.raises(InputError, match="language"):
        build_map(result, lang="fr")
    with pytest.raises(InputError, match="basemap"):
        build_map(result, basemap="google")


def test_empty_layers_are_left_out(result):
    from dataclasses import replace

    r = replace(
        result,
        gaps=result.gaps.iloc[0:0],
        suggestions=result.suggestions.iloc[0:0],
        facilities=result.facilities[result.facilities["kind"] != "youth_hostel"],
    )
    m = build_map(r)
    names = list(_groups(m))
    assert not any("服务缺口" in n or "建议" in n for n in names)
    assert not any(n.startswith("青荷驿站 · 设施") for n in names)
    empty = replace(
        result,
        residents=result.residents.iloc[0:0],
        facilities=result.facilities.iloc[0:0],
        suggestions=result.suggestions.iloc[0:0],
        areas=result.areas.iloc[0:0],
    )
    with pytest.raises(InputError, match="no residents"):
        build_map(empty)


def test_styles_are_looked_up_by_class_not_per_feature(result):
    """folium's style_function writes a switch case per feature: quadratic in the browser."""
    page = page_text(build_map(result, basemap="none"))
    assert page.count("case ") <= len(result.suggestions)  # only the few DivIcon sites
    assert page.count("const styles = [") >= len(result.specs) * 3


# ------------------------------------------------------------------------------ planning targets


def _target_layers(m: folium.Map) -> list[folium.GeoJson]:
    return [g for g in _geojson_layers(m) if "short" in g.data["features"][0]["properties"]]


def test_target_layers_colour_units_met_or_not(result):
    m = build_map(result, basemap="none")
    unit_targets = [
        (i, r)
        for i, r in enumerate(result.targets.to_dict("records"))
        if r["scope"] in ("street", "community")
    ]
    assert len(unit_targets) == 3
    groups = _groups(m)
    names = [n for n in groups if n.startswith("规划目标：")]
    assert names == [f"规划目标：{r['label']}" for _, r in unit_targets]  # first in the control
    assert list(groups)[: len(names)] == names
    assert not any(groups[n].show for n in names)  # toggled on by the reader
    layers = _target_layers(m)
    assert len(layers) == len(unit_targets)
    seen = set()
    for g, (i, r) in zip(layers, unit_targets, strict=True):
        units = result.target_units[result.target_units["target"] == i]
        areas = result.areas[result.areas["level"] == r["scope"]]
        feats = {f["properties"]["unit"]: f for f in g.data["features"]}
        assert set(feats) == set(units["unit"]) == set(areas["area"])
        for u in units.to_dict("records"):
            p = feats[u["unit"]]["properties"]
            assert p["target"] == r["label"]
            assert p["status"] == ("达标" if u["met"] else "未达标")
            assert p["s"] == (0 if u["met"] else 1)
            if r["measure"] == "facility_count":
                assert p["value"] == f"{u['value']:,.0f}"
                assert p["short"] == f"{u['shortfall_sites']:,}"
            else:
                assert p["value"] == f"{u['value'] * 100:.1f}%"
                assert p["short"] == f"{u['shortfall_population']:,.0f}"
            assert p["tip"] == f"{u['unit']} · {p['status']} · {p['value']}"
            style = _style(g, feats[u["unit"]])
            colour = cm.TARGET_MET_COLOUR if u["met"] else cm.TARGET_NOT_MET_COLOUR
            assert style["fillColor"] == colour
            seen.add(bool(u["met"]))
            # the unit's own polygon, as drawn for the choropleth
            poly = areas.loc[areas["area"] == u["unit"]].geometry.iloc[0]
            drawn = shapely.geometry.shape(feats[u["unit"]]["geometry"])
            assert drawn.symmetric_difference(poly).area < 1e-9
    assert seen == {True, False}  # both colours are on the map
    legend = page_text(m)
    assert "<h4>规划目标</h4>" in legend
    assert legend.index("<h4>规划目标</h4>") < legend.index("未达标</div>")


def test_no_unit_targets_no_target_layer(result, caplog):
    from dataclasses import replace

    import pandas as pd

    district = result.targets["scope"] == "district"
    r = replace(
        result,
        targets=result.targets[district].reset_index(drop=True),
        target_units=result.target_units.iloc[0:0],
    )
    m = build_map(r)
    assert _target_layers(m) == []
    assert "<h4>规划目标</h4>" not in page_text(m)
    empty = replace(result, targets=pd.DataFrame(), target_units=pd.DataFrame())
    assert _target_layers(build_map(empty)) == []
    # a unit without a polygon is said, and the others are still drawn
    units = result.target_units.copy()
    units.loc[units.index[units["scope"] == "street"][0], "unit"] = "不存在街道"
    with caplog.at_level("WARNING"):
        m = build_map(replace(result, target_units=units))
    assert "no street polygon" in caplog.text and "不存在街道" in caplog.text
    assert len(_target_layers(m)) == 3


def test_hostile_target_layer_is_escaped(hostile):
    m = build_map(hostile, basemap="none")
    names = [n for n in _groups(m) if n.startswith("规划目标：")]
    assert len(names) == 3 and all("&lt;" in n or "&quot;" in n for n in names)
    for g in _target_layers(m):
        for f in g.data["features"]:
            for key, value in f["properties"].items():
                if isinstance(value, str):
                    assert "<" not in value and ">" not in value, key
    labels = {f["properties"]["target"] for g in _target_layers(m) for f in g.data["features"]}
    assert html.escape(hostile.targets["label"].iloc[1]) in labels


def test_unsnapped_facilities_are_named_and_drawn_apart(result):
    """A facility beyond the snapping limit is drawn hollow and its popup says it serves no one."""
    fac = result.facilities.copy()
    fac.loc[0, "snapped"] = False
    fac.loc[0, "access_m"] = math.inf
    from dataclasses import replace

    m = build_map(replace(result, facilities=fac))
    fac_layers = [g for g in _geojson_layers(m) if "cap" in g.data["features"][0]["properties"]]
    feats = {f["properties"]["fid"]: (g, f) for g in fac_layers for f in g.data["features"]}
    g_off, f_off = feats[fac.loc[0, "facility_id"]]
    g_on, f_on = feats[fac.loc[1, "facility_id"]]
    assert "不参与计算" in f_off["properties"]["snap"]
    assert "不参与计算" not in f_on["properties"]["snap"]
    assert _style(g_off, f_off)["fillOpacity"] == 0.0
    assert _style(g_on, f_on)["fillOpacity"] == 1.0


# ------------------------------------------------------------- grouped panel, legend, popups, streets


def _panel(m: folium.Map) -> dict:
    return json.loads(m._children["sc_layers"].config)


def test_layer_panel_groups_layers_per_kind(result):
    """One collapsible section per kind holding its sub-layers, the first open; then the shared."""
    m = build_map(result, basemap="osm")
    panel = _panel(m)
    sections = panel["groups"]
    kinds = list(result.specs.values())
    assert [s["title"] for s in sections] == [s.label_zh for s in kinds] + ["规划目标与底图"]
    assert [s["open"] for s in sections] == [True] + [False] * len(kinds)
    groups = _groups(m)
    by_ref = {g.get_name(): g for g in groups.values()}
    refs = [e["ref"] for s in sections for e in s["layers"] if "ref" in e]
    tiles = [c for c in m._children.values() if isinstance(c, folium.TileLayer)]
    assert sorted(refs) == sorted([*by_ref, tiles[0].get_name()])  # every layer, exactly once
    for section, spec in zip(sections[:-1], kinds, strict=True):
        assert section["colour"] == spec.colour
        for e in section["layers"]:
            g = by_ref[e["ref"]]
            assert g.layer_name == html.escape(f"{spec.label_zh} · {e['name']}")  # its own kind
        names = [e["name"] for e in section["layers"]]
        assert names[0].startswith("设施") and "居民点步行时间" in names
        assert len(names) <= 9  # a short list per kind instead of one list of all
    shared = sections[-1]["layers"]
    assert [e["name"] for e in shared[:-1]] == [n for n in groups if n.startswith("规划目标：")]
    assert shared[-1]["name"] == "底图（OpenStreetMap）"
    # the panel script refers to every layer by its variable, and its assets are inline
    page = page_text(m)
    assert "L.control.scLayers(" in page and "L.Control.ScLayers = " in page
    assert "L.control.layers(" not in page
    en = _panel(build_map(result, lang="en", basemap="none"))
    assert next(s["title"] for s in en["groups"]) == kinds[0].label_en
    assert en["title"] == "Layers"


def test_layer_panel_text_cannot_inject_markup(hostile):
    """The panel sets labels as text: raw names in JSON, with no < > & left in the script."""
    m = build_map(hostile, basemap="none")
    script = m._children["sc_layers"].config
    assert "<" not in script and ">" not in script and "&" not in script
    titles = [s["title"] for s in _panel(m)["groups"]]
    assert titles[0] == next(iter(hostile.specs.values())).label_zh  # raw: shown as text
    assert HOSTILE in titles[0]
    page = page_text(m)
    assert "<script>alert" not in page


class _LegendColours(HTMLParser):
    """Swatch colours of the legend, by section (``data-legend`` key, or "" for shared rows)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.colours: dict[str, set[str]] = {}
        self.hidden: dict[str, bool] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        key = self.stack[-1] if self.stack else ""
        if tag == "div":
            if "data-legend" in a:
                key = a["data-legend"]
                self.hidden[key] = "hidden" in a
            self.stack.append(key)
        style = a.get("style") or ""
        cls = a.get("class") or ""
        if tag == "span" and ("sw" in cls.split() or "ln" in cls or "sc-site" in cls):
            bg = re.search(r"background:([^;]+)", style)
            border = re.search(r"border-color:([^;]+)", style)
            colour = border.group(1) if bg and bg.group(1) == "transparent" else bg and bg.group(1)
            if colour:
                self.colours.setdefault(key, set()).add(colour.lower())

    def handle_endtag(self, tag):
        if tag == "div" and self.stack:
            self.stack.pop()


def _legend(m: folium.Map) -> _LegendColours:
    p = _LegendColours()
    p.feed(m._children["sc_legend"].markup)
    return p


def _class_colour(style: dict) -> str:
    """What a feature of a class shows: its badge, its fill, or its outline when hollow/a line."""
    if "html" in style:
        return re.search(r"background:(#[0-9a-fA-F]+)", style["html"]).group(1).lower()
    if "fillColor" in style and style.get("fillOpacity", 1) > 0:
        return style["fillColor"].lower()
    return style["color"].lower()


def _kind_colours(m: folium.Map, spec) -> tuple[set[str], set[str]]:
    """(colours its features are drawn with, every colour its style tables hold) for a kind."""
    used, palette = set(), set()
    prefix = html.escape(spec.label_zh) + " · "
    for name, group in _groups(m).items():
        if not name.startswith(prefix):
            continue
        for g in _geojson_layers(group):
            for f in g.data["features"]:
                used.add(_class_colour(_style(g, f)))
            if g.on_each_feature is not None:
                table = re.search(r"const styles = (\[.*?\]);", g.on_each_feature.js_code).group(1)
                palette |= {_class_colour(st_) for st_ in json.loads(table)}
            else:
                palette |= {_class_colour(_style(g, f)) for f in g.data["features"]}
    panel = _panel(m)
    for section in panel["groups"]:
        if section["title"] != spec.label_zh:
            continue
        for e in section["layers"]:
            if "streets" in e:
                classes = panel["streets"]["c"][e["streets"]]
                used |= {e["styles"][ord(c) - 48]["color"].lower() for c in set(classes)}
                palette |= {s["color"].lower() for s in e["styles"]}
    return used, palette


@pytest.mark.parametrize("unsnapped", [False, True])
def test_legend_colours_are_the_drawn_colours(result, unsnapped):
    """Every colour a kind's features are drawn with is in its legend, and the legend shows no
    colour that is not in the kind's layers (the old legend drew rings grey and badges grey)."""
    from dataclasses import replace

    from tests.fixtures_streets import with_streets

    r = with_streets(result)
    if unsnapped:
        fac = r.facilities.copy()
        fac.loc[0, "snapped"] = False
        r = replace(r, facilities=fac)
    m = build_map(r, basemap="none")
    legend = _legend(m)
    shared = legend.colours[""]
    drawn_everywhere = set()
    for i, spec in enumerate(r.specs.values()):
        own = legend.colours[f"k{i}"]
        assert legend.hidden[f"k{i}"] == (i > 0)  # the legend follows the open kind
        used, palette = _kind_colours(m, spec)
        drawn_everywhere |= palette
        assert used <= own | shared, (spec.kind, used - own - shared)
        assert own <= palette, (spec.kind, own - palette)
        assert spec.colour.lower() in own
    targets = {cm.TARGET_MET_COLOUR.lower(), cm.TARGET_NOT_MET_COLOUR.lower()}
    assert shared <= drawn_everywhere | targets
    assert (cm.UNSNAPPED_FACILITY_COLOUR.lower() in shared) == unsnapped


@pytest.mark.parametrize(
    ("lang", "words"),
    [("zh", ("设施", "居民点步行时间")), ("en", ("facilities", "residents: walking minutes"))],
)
def test_popups_name_their_layer(result, lang, words):
    m = build_map(result, lang=lang, basemap="none")
    titles = []
    for name, group in _groups(m).items():
        for g in _geojson_layers(group):
            popups = [c for c in g._children.values() if isinstance(c, folium.GeoJsonPopup)]
            if not popups:  # the rings only have a tooltip, which names the kind itself
                label = name.split(" · ")[0]
                assert all(f["properties"]["label"].startswith(label) for f in g.data["features"])
                continue
            assert len(popups) == 1, name
            assert isinstance(popups[0], cm.LayerPopup)
            assert popups[0].title == name  # the layer's full (escaped) name
            titles.append(popups[0].title)
    for spec in result.specs.values():
        label = spec.label(lang)
        assert any(t.startswith(f"{label} · {words[0]}") for t in titles)
        assert f"{label} · {words[1]}" in titles
    page = page_text(m)
    first = next(iter(result.specs.values())).label(lang)
    assert json.dumps(f"{first} · {words[1]}") in page  # written into the popup script
    assert "sc-pop-layer" in page


def _decode(flat: list[int]) -> list[tuple[float, float]]:
    out, lat, lon = [], 0, 0
    for i in range(0, len(flat), 2):
        lat, lon = lat + flat[i], lon + flat[i + 1]
        out.append((lon / 1e6, lat / 1e6))
    return out


@pytest.mark.parametrize("basemap", ["none", "osm", "gcj02"])
def test_street_network_coloured_by_minutes(result, basemap):
    from tests.fixtures_streets import with_streets

    r = with_streets(result)
    m = build_map(r, basemap=basemap)
    panel = _panel(m)
    data = panel["streets"]
    assert len(data["xy"]) == len(r.streets)
    # coordinates survive the delta encoding to the 6th decimal (shifted for Amap tiles)
    for line, geom in zip(data["xy"], r.streets.geometry, strict=True):
        lon, lat = np.array(geom.coords).T
        if basemap == "gcj02":
            lon, lat = wgs84_to_gcj02(lon, lat)
        want = np.column_stack([np.round(lon, 6), np.round(lat, 6)])
        np.testing.assert_allclose(np.array(_decode(line)), want, rtol=0, atol=1e-9)
    kinds = list(r.specs.values())
    for i, (section, spec) in enumerate(zip(panel["groups"][: len(kinds)], kinds, strict=True)):
        entry = next(e for e in section["layers"] if "streets" in e)
        names = [e["name"] for e in section["layers"]]
        assert names.index(entry["name"]) == names.index("居民点步行时间") + 1
        assert entry["name"] == "步行网络（按步行时间着色）"
        assert entry["pane"] == "sc-streets"
        assert cm.PANES["sc-streets"] < cm.PANES["sc-residents"]  # drawn below the points
        # visible at start for the open kind when there are no tiles to read the map by
        assert entry["show"] == (i == 0 and basemap == "none")
        minutes = r.streets[f"minutes_{spec.kind}"].to_numpy()
        classes = [ord(c) - 48 for c in data["c"][entry["streets"]]]
        colours = [entry["styles"][c]["color"] for c in classes]
        legend = dict(cm._minute_classes(spec, "zh"))
        within = sorted(t for t in spec.thresholds_min if t <= spec.headline_min)
        for mins, colour in zip(minutes, colours, strict=True):
            if math.isinf(mins):
                assert colour == legend["路网不可达"]
            elif mins > spec.headline_min:
                assert colour == legend[f"> {spec.headline_min:g} 分钟（未覆盖）"]
            else:
                t = next(t for t in within if mins <= t)
                assert colour == legend[f"≤{t:g} 分钟"]
        assert cm.UNREACHABLE_COLOUR in colours and cm.UNCOVERED_COLOUR in colours


def test_no_streets_no_street_layer(result):
    """Older results carry no network: no street row, nothing shipped."""
    assert result.streets is None
    m = build_map(result, basemap="none")
    panel = _panel(m)
    assert panel["streets"] is None
    assert not any("streets" in e for s in panel["groups"] for e in s["layers"])
    assert "圆点为居民点" not in m._children["sc_legend"].markup


def test_street_data_is_compact(result):
    """A street costs its coordinates and one character per kind: no per-feature properties."""
    from tests.fixtures_streets import with_streets

    r = with_streets(result)
    with_net = len(page_text(build_map(r, basemap="none")))
    without = len(page_text(build_map(result, basemap="none")))
    n_points = sum(len(g.coords) for g in r.streets.geometry)
    assert (with_net - without) / n_points < 20  # bytes per point, all kinds together


@given(
    st.floats(min_value=0, max_value=60) | st.just(math.inf) | st.just(math.nan),
    st.sampled_from(["canteen", "neighborhood_center", "youth_hostel"]),
)
def test_street_classes_match_resident_classes(minutes, kind):
    spec = make_result.__globals__["load_layer_table"]()[kind]
    within = sorted(t for t in spec.thresholds_min if t <= spec.headline_min)
    covered = minutes <= spec.headline_min
    want = cm._resident_class(minutes, covered, True, within)
    assert cm.street_classes(np.array([minutes]), spec)[0] == want
