"""What-if edits against a full re-analysis, on the same instance in one run.

Run: ``python -m bench.bench_whatif``.  For each edit a planner makes in the studio (add, move,
remove a site; change a layer's walking speed or minutes) it prints the time of the edit plus
the layer's metrics (every number the studio's panel shows), as p50 and p95 over repeated
edits, and the ratio to a full batch :func:`coverage.analysis.analyse` of the same facility
set.  Instances: the real westlake_10km network (the ``prepare-osm`` example's streets, 8,000
OSM residential buildings as residents) and a seeded ~100k-node grid with 50,000 residents.
Studio budget (issue 14): p95 under 50 ms on westlake, under 200 ms on the 100k grid.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_coverage import OSM, inputs_for  # noqa: E402
from bench.synthetic import grid_network, random_points  # noqa: E402
from coverage.analysis import analyse  # noqa: E402
from coverage.whatif import Study  # noqa: E402
from geo.load import load_network  # noqa: E402
from geo.network import WalkNetwork  # noqa: E402

KIND = "canteen"
REPEAT = 40


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def _time(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run(name: str, net: WalkNetwork, study: Study, budget_ms: float) -> None:
    inputs = study.edited_inputs()
    analyse(net, inputs, title=name)  # warm-up
    full = min(_time(lambda: analyse(net, inputs, title=name)) for _ in range(2))
    routed = _time(lambda: Study.route(net, inputs))
    rng = np.random.default_rng(5)
    lonlat = net.to_wgs84.transform(*net.node_xy[rng.integers(0, net.n_nodes, REPEAT)].T)
    times: dict[str, list[float]] = {k: [] for k in ("add", "move", "remove", "speed", "minutes")}
    s = study
    for i in range(REPEAT):
        lon, lat = float(lonlat[0][i]), float(lonlat[1][i])
        t = time.perf_counter()
        s2, fid = s.add_facility(KIND, lon=lon, lat=lat)
        s2.metrics(KIND)
        times["add"].append(time.perf_counter() - t)
        t = time.perf_counter()
        j = (i + 1) % REPEAT
        s3 = s2.move_facility(KIND, fid, lon=float(lonlat[0][j]), lat=float(lonlat[1][j]))
        s3.metrics(KIND)
        times["move"].append(time.perf_counter() - t)
        t = time.perf_counter()
        s4 = s3.remove_facility(KIND, fid)
        s4.metrics(KIND)
        times["remove"].append(time.perf_counter() - t)
        t = time.perf_counter()
        s.with_speed(KIND, 3.0 + 0.01 * i).metrics(KIND)
        times["speed"].append(time.perf_counter() - t)
        t = time.perf_counter()
        s.with_thresholds(KIND, (5.0, 10.0, 15.0, 20.0 + i % 5)).metrics(KIND)
        times["minutes"].append(time.perf_counter() - t)
    print(
        f"\n== {name}: {net.n_nodes:,} nodes, {len(inputs.residents):,} residents, "
        f"{len(study.layers)} layers; full analyse {full * 1000:.0f} ms, "
        f"snap+route only {routed * 1000:.0f} ms"
    )
    print(f"{'edit (+ metrics)':18s} {'p50 ms':>8s} {'p95 ms':>8s} {'full / p50':>11s}  budget")
    for edit, values in times.items():
        p50, p95 = _pct(values, 50), _pct(values, 95)
        ok = "OK" if p95 < budget_ms else "MISSED"
        print(
            f"{edit:18s} {p50:8.1f} {p95:8.1f} {full * 1000 / p50:10.0f}x  "
            f"p95 < {budget_ms:.0f} ms {ok}"
        )


def main() -> None:
    pbf = OSM / "westlake_10km.osm.pbf"
    homes_file = OSM / "hangzhou_westlake_residential_osm.geojson"
    if pbf.exists() and homes_file.exists():
        net = load_network(pbf)
        homes = gpd.read_file(homes_file).representative_point()
        xy = net.project_lonlat(homes.x.to_numpy(), homes.y.to_numpy())
        xy = xy[np.random.default_rng(0).choice(len(xy), 8000, replace=False)]
        study = Study.route(net, inputs_for(net, xy, 1))
        run("Hangzhou westlake_10km (real OSM)", net, study, 50.0)
    else:
        print(f"skipping the real network: {OSM} not present")
    grid = grid_network(100_000, seed=1)
    study = Study.route(grid, inputs_for(grid, random_points(grid, 50_000), 2))
    run("synthetic grid ~100k nodes", grid, study, 200.0)


if __name__ == "__main__":
    main()
