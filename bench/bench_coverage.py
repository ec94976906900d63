"""Whole-analysis benchmark: 4 layers x 3 thresholds, with the share of time per stage.

Run: ``python -m bench.bench_coverage``.  Instances:

* the real Hangzhou walk network (westlake_10km.osm.pbf) with 8,000 resident points taken from
  OSM residential buildings (populations seeded) and seeded facility layers;
* a seeded synthetic grid of ~100k nodes with 100k resident points.

Network loading is excluded (it is cached on disk in real runs).  Targets (issue 4): under 2 s
and under 15 s.  Service-area polygons are reported separately: they are drawn for the map and
feed no number.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from pathlib import Path

import geopandas as gpd
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.synthetic import grid_network, random_points  # noqa: E402
from coverage.analysis import AnalysisOptions, StudyInputs, analyse  # noqa: E402
from geo.load import load_network  # noqa: E402
from geo.network import WalkNetwork  # noqa: E402
from layers.spec import load_layer_table  # noqa: E402

OSM = ROOT.parent / "shared" / "data" / "osm"
COUNTS = {"canteen": 40, "neighborhood_center": 15, "elderly_station": 30, "youth_hostel": 8}


def _frame(net: WalkNetwork, xy: np.ndarray, columns: dict) -> gpd.GeoDataFrame:
    lon, lat = net.to_wgs84.transform(xy[:, 0], xy[:, 1])
    return gpd.GeoDataFrame(columns, geometry=gpd.points_from_xy(lon, lat), crs=4326)


def inputs_for(net: WalkNetwork, res_xy: np.ndarray, seed: int) -> StudyInputs:
    rng = np.random.default_rng(seed)
    n = len(res_xy)
    pop = rng.integers(20, 400, n)
    residents = _frame(
        net,
        res_xy,
        {
            "resident_id": [f"r{i}" for i in range(n)],
            "name": "",
            "population": pop,
            "elderly": (pop * rng.uniform(0.15, 0.35, n)).astype(int),
            "youth": (pop * rng.uniform(0.15, 0.3, n)).astype(int),
        },
    )
    facilities = {}
    for kind, k in COUNTS.items():
        xy = net.node_xy[rng.integers(0, net.n_nodes, k)] + rng.normal(0, 20, (k, 2))
        facilities[kind] = _frame(
            net,
            xy,
            {
                "facility_id": [f"{kind}-{i}" for i in range(k)],
                "kind": kind,
                "name": "",
                "capacity": rng.integers(20, 200, k).astype(float),
            },
        )
    return StudyInputs(residents, facilities, load_layer_table())


def run(name: str, net: WalkNetwork, inputs: StudyInputs, target_s: float) -> None:
    analyse(net, inputs, title=name)  # warm-up: imports, cached indexes
    t = time.perf_counter()
    r = analyse(net, inputs, title=name, options=AnalysisOptions())
    wall = time.perf_counter() - t
    stages: dict[str, float] = defaultdict(float)
    for key, sec in r.timings_s.items():
        if key != "total":
            stages[key.split("_")[0] if not key.startswith("service") else "service_areas"] += sec
    polys = stages.pop("service_areas", 0.0)
    numbers = wall - polys
    print(
        f"\n== {name}: {net.n_nodes:,} nodes, {len(inputs.residents):,} residents, "
        f"4 layers x 3 thresholds"
    )
    print(
        f"analysis (every number: snap, route, metrics, gaps, 2SFCA): {numbers:.2f} s "
        f"(target < {target_s:.0f} s) {'OK' if numbers < target_s else 'MISSED'}"
    )
    for stage, sec in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:10s} {sec:7.3f} s  {sec / numbers:6.1%}")
    print(f"service-area polygons for the map (12 dissolved rings): {polys:.2f} s")


def main() -> None:
    pbf = OSM / "westlake_10km.osm.pbf"
    homes_file = OSM / "hangzhou_westlake_residential_osm.geojson"
    if pbf.exists() and homes_file.exists():
        net = load_network(pbf)
        homes = gpd.read_file(homes_file).representative_point()
        xy = net.project_lonlat(homes.x.to_numpy(), homes.y.to_numpy())
        rng = np.random.default_rng(0)
        xy = xy[rng.choice(len(xy), 8000, replace=False)]
        run("Hangzhou westlake_10km (real OSM)", net, inputs_for(net, xy, 1), 2.0)
    else:
        print(f"skipping the real network: {OSM} not present")
    syn = grid_network(100_000, seed=1)
    run("synthetic grid ~100k nodes", syn, inputs_for(syn, random_points(syn, 100_000), 2), 15.0)


if __name__ == "__main__":
    main()
