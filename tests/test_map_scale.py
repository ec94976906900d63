"""The map of a large study: residents summed to H3 hexagons, every part of the page bounded.

A seeded synthetic grid study of a few thousand residents, analysed for real, stands in for a
city: with a low ``aggregate_above`` it is drawn as a 1M-resident study would be.  The hexagon
figures are checked against a plain per-resident loop over ``result.residents``.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict

import folium
import h3
import numpy as np
import pytest
import shapely

from coverage.aggregate import MAX_CELLS, choose_resolution, resident_hexes
from coverage.hexgrid import point_cells
from maps import coverage_map as cm
from maps.coverage_map import build_map, page_text, render_map
from tests.chromium import chromium, wait_for

N = 3_000
LOW = 1_000  # aggregate_above for the tests: the study counts as large


@pytest.fixture(scope="module")
def study():
    from bench.bench_coverage import inputs_for
    from bench.synthetic import grid_network, random_points
    from coverage.analysis import analyse

    net = grid_network(N, seed=3)
    inputs = inputs_for(net, random_points(net, N, seed=4), 5)
    result = analyse(net, inputs, title="网格测试区（合成）")
    res = result.residents.copy()
    # a few residents off the network and unreachable, so every branch is exercised
    res.loc[res.index[:5], "snapped"] = False
    for kind in result.specs:
        res.loc[res.index[:5], f"minutes_{kind}"] = np.inf
        res.loc[res.index[:5], f"covered_{kind}"] = False
        res.loc[res.index[5:9], f"minutes_{kind}"] = np.inf
        res.loc[res.index[5:9], f"covered_{kind}"] = False
    from dataclasses import replace

    return replace(result, residents=res)


def _brute(result, kind: str, resolution: int) -> dict[str, tuple[float, float, float, int]]:
    """Per cell: target population, covered population, mean minutes, units (a plain loop)."""
    spec = result.specs[kind]
    acc: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0, 0])
    for row in result.residents.itertuples(index=False):
        cell = h3.latlng_to_cell(row.geometry.y, row.geometry.x, resolution)
        w = float(getattr(row, spec.target_group))
        minutes = float(getattr(row, f"minutes_{kind}"))
        a = acc[cell]
        a[0] += w
        a[1] += w if getattr(row, f"covered_{kind}") else 0.0
        if math.isfinite(minutes):
            a[2] += w * minutes
            a[3] += w
        a[4] += 1
    return {
        c: (a[0], a[1], a[2] / a[3] if a[3] > 0 else math.nan, int(a[4])) for c, a in acc.items()
    }


@pytest.mark.parametrize("resolution", [8, 9])
def test_hexagon_totals_equal_a_per_resident_loop(study, resolution):
    hexes = resident_hexes(study.residents, study.specs, resolution=resolution)
    assert hexes.resolution == resolution
    assert hexes.cells["cell"].tolist() == sorted(hexes.cells["cell"])
    for kind, spec in study.specs.items():
        rows = hexes.layer(kind)
        assert rows["cell"].tolist() == hexes.cells["cell"].tolist()
        # the population sums equal the residents' total of the layer's target group
        total = float(study.residents[spec.target_group].sum())
        assert rows["population"].sum() == pytest.approx(total)
        assert rows["residents"].sum() == len(study.residents)
        brute = _brute(study, kind, resolution)
        assert set(brute) == set(rows["cell"])
        for r in rows.itertuples(index=False):
            pop, cov, mean, units = brute[r.cell]
            assert r.population == pytest.approx(pop)
            assert r.covered_population == pytest.approx(cov)
            assert r.residents == units
            if pop > 0:
                assert r.covered_share == pytest.approx(cov / pop)
            else:
                assert math.isnan(r.covered_share)
            if math.isnan(mean):
                assert math.isnan(r.mean_minutes)
            else:
                assert r.mean_minutes == pytest.approx(mean)


def test_every_resident_lies_in_its_hexagon(study):
    hexes = resident_hexes(study.residents, study.specs, resolution=9)
    polygons = dict(zip(hexes.cells["cell"], hexes.cells.geometry, strict=True))
    pts = study.residents.geometry
    cells = point_cells(pts.x.to_numpy(), pts.y.to_numpy(), resolution=9)
    inside = [polygons[c].buffer(1e-9).contains(p) for c, p in zip(cells, pts, strict=True)]
    assert all(inside)


def test_resolution_is_the_finest_within_the_cell_ceiling(study):
    pts = study.residents.geometry
    finest = point_cells(pts.x.to_numpy(), pts.y.to_numpy(), resolution=10)
    n = {r: len({h3.cell_to_parent(c, r) for c in set(finest)}) for r in (10, 9, 8, 7)}
    assert n[10] > n[9] > n[8] >= n[7]  # the grid spans several cells at every resolution
    for ceiling in (n[10], n[10] - 1, n[9], n[8], 1):
        res = choose_resolution(finest, max_cells=ceiling)
        fits = [r for r in (10, 9, 8, 7) if n[r] <= ceiling]
        assert res == (fits[0] if fits else 7)
    hexes = resident_hexes(study.residents, study.specs, max_cells=n[9])
    assert hexes.resolution == 9 and len(hexes.cells) == n[9]
    assert MAX_CELLS >= 10_000  # a district keeps block-scale cells by default


def _hex_layers(m: folium.Map) -> dict[str, tuple[cm.PanelGroup, dict]]:
    out = {}
    for group in m._children.values():
        if isinstance(group, cm.PanelGroup):
            for child in group._children.values():
                if isinstance(child, cm.HexLayer):
                    out[group.title] = (group, json.loads(child.data))
    return out


def _geojson_popup_fields(m: folium.Map) -> list[list[str]]:
    fields = []

    def walk(el):
        for child in el._children.values():
            if isinstance(child, folium.GeoJsonPopup):
                fields.append(list(child.fields))
            walk(child)

    walk(m)
    return fields


def test_map_draws_hexagons_above_the_threshold(study):
    m = build_map(study, basemap="none", aggregate_above=LOW)
    hexes = resident_hexes(study.residents, study.specs)
    layers = _hex_layers(m)
    assert len(layers) == len(study.specs)
    # no per-resident layer is left (its popup has the resident id field)
    assert not any("rid" in f for f in _geojson_popup_fields(m))
    page = page_text(m)
    rings = json.loads(re.search(r"var sc_hex_xy = (\[.*?\]);\n", page, flags=re.S).group(1))
    assert len(rings) == len(hexes.cells)
    # the decoded ring of each cell is its hexagon, rounded to 6 decimals
    for flat, poly in zip(rings[:50], hexes.cells.geometry[:50], strict=True):
        lat_lon = np.cumsum(np.array(flat).reshape(-1, 2), axis=0) / 1e6
        expected = np.asarray(poly.exterior.coords)[:-1, ::-1]
        np.testing.assert_allclose(lat_lon, expected, atol=1.1e-6)
    for kind, spec in study.specs.items():
        group, data = next(v for t, v in layers.items() if t.startswith(spec.label("zh")))
        assert group.show == (kind == next(iter(study.specs)))
        rows = hexes.layer(kind)
        assert len(data["c"]) == len(data["pop"]) == len(rings)
        assert data["pop"] == np.rint(rows["population"]).astype(int).tolist()
        assert abs(sum(data["pop"]) - study.residents[spec.target_group].sum()) <= len(rings) / 2
        share = rows["covered_share"].to_numpy()
        assert [ord(c) - 48 for c in data["c"]] == [cm.choropleth_class(s) for s in share]
        assert data["share"] == [-1 if math.isnan(s) else round(s * 10_000) for s in share]
        assert "六边形" in data["title"]


def test_below_the_threshold_residents_stay_points(study):
    m = build_map(study, basemap="none")  # default threshold: a few thousand are points
    assert _hex_layers(m) == {}
    assert sum("rid" in f for f in _geojson_popup_fields(m)) == len(study.specs)
    assert "sc_hex_xy" not in page_text(m)


def test_aggregated_page_is_a_fraction_of_the_per_point_page(study, tmp_path):
    points = render_map(study, tmp_path / "points.html", basemap="none").stat().st_size
    hexes = render_map(study, tmp_path / "hex.html", basemap="none", aggregate_above=LOW)
    assert hexes.stat().st_size < 0.5 * points


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_legend_says_residents_are_aggregated(study, lang):
    page = page_text(build_map(study, basemap="none", lang=lang, aggregate_above=LOW))
    edge = round(
        h3.average_hexagon_edge_length(
            resident_hexes(study.residents, study.specs).resolution, unit="m"
        )
    )
    note = re.search(r'<div class="note" id="sc-hex-note">(.*?)</div>', page).group(1)
    assert str(edge) in note
    assert ("六边形" in note) if lang == "zh" else ("hexagons" in note)


def test_streets_and_polygons_are_bounded(study, monkeypatch):
    streets, _ = cm._street_data(study, gcj02=False)
    assert streets is not None
    n = len(streets["xy"])
    monkeypatch.setattr(cm, "MAX_STREETS", n // 4)
    few, _ = cm._street_data(study, gcj02=False)
    assert few is not None and len(few["xy"]) == n // 4
    # the kept streets are the longest ones (in degrees, as drawn)
    lengths = np.sort(shapely.length(np.asarray(study.streets.geometry.array)))[::-1]
    kept = sorted(
        (
            float(
                np.hypot(
                    *np.diff(np.cumsum(np.array(f).reshape(-1, 2), axis=0) / 1e6, axis=0).T
                ).sum()
            )
            for f in few["xy"]
        ),
        reverse=True,
    )
    assert kept[-1] >= lengths[n // 4 - 1] - 1e-5
    # a polygon layer over its vertex budget is simplified until it fits (or at the ceiling)
    rings = study.service_areas[study.service_areas["facility_id"] == ""]
    full = int(shapely.get_num_coordinates(cm._display_geometry(rings, gcj02=False)).sum())
    small = cm._display_geometry(rings, gcj02=False, max_coords=full // 3)
    assert int(shapely.get_num_coordinates(small).sum()) <= full // 3
    assert shapely.equals_exact(
        cm._display_geometry(rings, gcj02=False, max_coords=full),
        cm._display_geometry(rings, gcj02=False),
    ).all()


@pytest.mark.browser
def test_hexagon_map_opens_with_legend_and_popup(study, tmp_path, artifacts_dir):
    m = build_map(study, basemap="none", aggregate_above=LOW)
    path = tmp_path / "map_hex.html"
    m.save(str(path))
    hexes = resident_hexes(study.residents, study.specs)
    first = next(iter(study.specs))
    group = next(g for g, _ in _hex_layers(m).values() if g.show)
    with chromium(window=(1400, 900), offline=True, logs=True) as drv:
        drv.get(path.as_uri())
        n = wait_for(drv, f"return window.{group.get_name()}.getLayers().length")
        assert n == len(hexes.cells)
        assert (
            drv.execute_script(
                "return document.querySelectorAll('.leaflet-sc-residents-pane canvas').length"
            )
            == 1
        )
        legend = drv.find_element("id", "sc-legend").text
        assert "六边形网格" in legend and "汇总" in legend
        # click the hexagon nearest the map centre: its popup shows its figures
        rows = hexes.layer(first)
        centres = np.array([h3.cell_to_latlng(c) for c in rows["cell"]])
        mid = centres.mean(axis=0)
        i = int(np.argmin(((centres - mid) ** 2).sum(axis=1)))
        xy = drv.execute_script(
            f"const p = window.{m.get_name()}.latLngToContainerPoint(arguments[0]);"
            " const r = document.getElementById(arguments[1]).getBoundingClientRect();"
            " return [p.x + r.left, p.y + r.top];",
            centres[i].tolist(),
            m.get_name(),
        )
        hit = drv.execute_script(
            "const e = document.elementFromPoint(arguments[0], arguments[1]);"
            " return e.tagName + ' ' + (e.parentElement ? e.parentElement.className : '')",
            *xy,
        )
        assert hit.startswith("CANVAS") and "sc-residents" in hit, hit
        from selenium.webdriver.common.action_chains import ActionChains

        body = drv.find_element("tag name", "body")
        ActionChains(drv).move_to_element_with_offset(
            body, int(xy[0] - body.rect["width"] / 2), int(xy[1] - body.rect["height"] / 2)
        ).click().perform()
        popup = wait_for(
            drv,
            "const p = document.querySelector('.leaflet-popup-content');"
            " if (!p || !p.textContent.trim()) return null;"
            " const box = p.closest('.leaflet-popup');"  # wait for the fade-in to end
            " return getComputedStyle(box).opacity === '1' ? p.innerText : null",
        )
        r = rows.iloc[i]
        assert "六边形网格汇总" in popup.splitlines()[0]
        assert f"{r['population']:,.0f}" in popup
        assert f"{r['covered_share'] * 100:.1f}%" in popup
        drv.save_screenshot(str(artifacts_dir / "map_hexagons_zh.png"))
        assert [e for e in drv.get_log("browser") if e["level"] == "SEVERE"] == []


def test_gap_zones_capped_worst_first(study, monkeypatch):
    kind, spec = max(study.specs.items(), key=lambda kv: (study.gaps["kind"] == kv[0]).sum())
    gaps = study.gaps[study.gaps["kind"] == kind]
    assert len(gaps) >= 2
    cap = len(gaps) // 2
    monkeypatch.setattr(cm, "MAX_GAPS", cap)
    group = cm._gap_layer(study, spec, "zh", gcj02=False, show=True)
    assert group is not None
    layer = next(c for c in group._children.values() if isinstance(c, folium.GeoJson))
    ids = [int(f["properties"]["gid"]) for f in layer.data["features"]]
    assert ids == sorted(gaps["gap_id"])[:cap]  # gap 1 is the worst
    assert group.panel_name == f"服务缺口（最严重的 {cap} 处，共 {len(gaps)} 处）"


def test_hexagon_choropleth_left_out_when_residents_are_hexagons(study):
    assert (study.areas["level"] == "hex").any()  # no 街道 given: H3 reporting areas
    name = "覆盖率（网格）"
    points = [
        g.panel_name
        for g in build_map(study, basemap="none")._children.values()
        if isinstance(g, cm.PanelGroup)
    ]
    hexes = [
        g.panel_name
        for g in build_map(study, basemap="none", aggregate_above=LOW)._children.values()
        if isinstance(g, cm.PanelGroup)
    ]
    assert points.count(name) == len(study.specs) and name not in hexes


def test_city_map_draws_its_network_on_a_canvas_when_switched_on(study):
    def street_entries(m):
        panel = next(c for c in m._children.values() if isinstance(c, cm.LayerPanel))
        config = json.loads(panel.config)
        return [e for g in config["groups"] for e in g["layers"] if "streets" in e]

    small = build_map(study, basemap="none")
    assert street_entries(small)[0]["show"] is True  # no tiles: the network frames the points
    assert '_paneRenderers["sc-streets"]' not in page_text(small)  # a district: SVG
    big = build_map(study, basemap="none", aggregate_above=LOW)
    first = street_entries(big)[0]
    assert first["show"] is False and first["fallback"] is True  # drawn if the tiles fail
    assert '_paneRenderers["sc-streets"]' in page_text(big)
