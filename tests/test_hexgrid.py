"""H3 hexagons as reporting areas: cells per resident point and the cell polygons."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import pytest
from shapely.geometry import Point

from coverage.hexgrid import hex_areas
from coverage.metrics import coverage_metrics

# points in central Hangzhou (WGS84): three within 25 m of each other near West Lake's east
# shore (湖滨), one 160 m east of them, one near 杭州东站 some 7 km away.  At resolution 8 the
# first four share cell 88309a42cbfffff and the station has its own; at resolution 10 (cells
# about 150 m across) the fourth point moves to a cell of its own.
LON = np.array([120.16480, 120.16483, 120.16500, 120.16650, 120.21920])
LAT = np.array([30.25790, 30.25792, 30.25800, 30.25800, 30.29080])


def test_cells_match_h3_and_contain_their_points() -> None:
    cells, areas = hex_areas(LON, LAT, resolution=8)
    assert cells.shape == (5,)
    for lo, la, cell in zip(LON, LAT, cells, strict=True):
        assert cell == h3.latlng_to_cell(la, lo, 8)  # note h3's (lat, lng) order
    assert cells.tolist() == ["88309a42cbfffff"] * 4 + ["88309a55d1fffff"]
    assert set(areas["area"]) == set(cells)
    assert areas["area"].tolist() == sorted(areas["area"])
    by_id = areas.set_index("area")
    for lo, la, cell in zip(LON, LAT, cells, strict=True):
        polygon = by_id.loc[cell, "geometry"]
        assert polygon.is_valid and len(polygon.exterior.coords) == 7  # hexagon, closed ring
        assert polygon.contains(Point(lo, la))  # (lon, lat) order in the geometry
        # resolution 8 hexagons: about 0.74 km² (the average; cells near 30°N are close to it)
        area_km2 = h3.cell_area(cell, unit="km^2")
        assert 0.5 < area_km2 < 1.0


def test_areas_layer_schema() -> None:
    _, areas = hex_areas(LON, LAT)
    assert isinstance(areas, gpd.GeoDataFrame)
    assert areas.crs is not None and areas.crs.to_epsg() == 4326
    assert list(areas.columns) == ["area", "level", "parent", "geometry"]
    assert set(areas["level"]) == {"hex"} and set(areas["parent"]) == {""}


def test_finer_resolution_splits_cells() -> None:
    coarse, _ = hex_areas(LON, LAT, resolution=7)
    fine, fine_areas = hex_areas(LON, LAT, resolution=10)
    assert len(set(coarse)) == 2 and len(set(fine)) == 3
    assert fine[0] == fine[1] == fine[2] != fine[3]
    assert all(h3.get_resolution(c) == 10 for c in fine_areas["area"])
    # each fine cell sits inside the coarse cell of its point
    for f, c in zip(fine, coarse, strict=True):
        assert h3.cell_to_parent(f, 7) == c


def test_cells_serve_as_metric_areas(tmp_path: Path) -> None:
    # the cell ids work directly as the area labels of coverage_metrics, and the layer writes
    # to a GeoPackage and reads back unchanged
    cells, areas = hex_areas(LON, LAT)
    # minutes 3, 20, 4, 12, 6 with weights 10 each and 5 for the station point; at 15 minutes
    #   West Lake cell: population 40, covered 10 + 10 + 10 = 30 -> 0.75
    #   station cell:   population 5, covered 5 -> 1
    table = coverage_metrics(
        np.array([3.0, 20.0, 4.0, 12.0, 6.0]),
        np.array([10.0, 10.0, 10.0, 10.0, 5.0]),
        thresholds_min=[15],
        unsnapped=np.zeros(5, dtype=bool),
        area=cells,
        area_names=areas["area"].tolist(),
        level="hex",
        kind="k",
        target_group="population",
    )
    assert table["area"].tolist() == ["", "88309a42cbfffff", "88309a55d1fffff"]
    assert table["population"].tolist() == [45.0, 40.0, 5.0]
    assert table["coverage_rate"].tolist() == [35 / 45, 0.75, 1.0]
    path = tmp_path / "hex.gpkg"
    areas.to_file(path, layer="areas", driver="GPKG")
    back = gpd.read_file(path, layer="areas")
    assert back["area"].tolist() == areas["area"].tolist()
    assert back.geometry.geom_equals_exact(areas.geometry, tolerance=1e-9).all()


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="WGS84"):
        hex_areas(np.array([500000.0]), np.array([3300000.0]))  # projected metres
    with pytest.raises(ValueError, match="NaN"):
        hex_areas(np.array([np.nan]), np.array([30.0]))
    with pytest.raises(ValueError, match="resolution"):
        hex_areas(LON, LAT, resolution=16)
    with pytest.raises(ValueError, match="equally long"):
        hex_areas(LON, LAT[:2])


def test_no_points_gives_an_empty_layer() -> None:
    cells, areas = hex_areas(np.array([]), np.array([]))
    assert cells.shape == (0,) and len(areas) == 0
    assert list(areas.columns) == ["area", "level", "parent", "geometry"]


def test_point_cells_and_polygons_are_the_parts_of_hex_areas() -> None:
    from coverage.hexgrid import cell_polygons, point_cells

    cells, areas = hex_areas(LON, LAT, resolution=9)
    assert point_cells(LON, LAT, resolution=9).tolist() == cells.tolist()
    polygons = cell_polygons(areas["area"].tolist())
    assert all(p.equals(q) for p, q in zip(polygons, areas.geometry, strict=True))
    with pytest.raises(ValueError, match="resolution"):
        point_cells(LON, LAT, resolution=True)
