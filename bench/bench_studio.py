"""Studio edits through the HTTP API: server-side time (Server-Timing header) and round trip.

Run: ``python -m bench.bench_studio``.  Each edit's response carries the scenario's whole
summary.json, built from the numbers-only result (no gap outlines, 2SFCA loads or polygons);
the map's drawing is a separate request the page makes after.  The edit alone, with the
layer's metrics, is measured by ``bench_whatif``.  Instances: the demo with its 5 planning
targets, westlake_10km with 8,000 OSM residential buildings (no targets), and a seeded
~100k-node grid with 50,000 residents.  Budgets (issue 14): server-side p95 under 50 ms on
westlake, under 200 ms on the grid.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import app  # noqa: E402
from bench.bench_coverage import OSM, inputs_for  # noqa: E402
from bench.synthetic import grid_network, random_points  # noqa: E402
from coverage.whatif import Study  # noqa: E402
from geo.load import load_network  # noqa: E402
from maps.studio.server import create_app  # noqa: E402
from maps.studio.session import Session  # noqa: E402


def bench(name: str, study: Study, *, edits: int = 30, client: Any = None) -> None:
    from starlette.testclient import TestClient

    if client is None:
        folder = Path(tempfile.mkdtemp(prefix="bench-studio-"))
        client = TestClient(create_app(Session(study, title=name, synthetic=False, sources=(),
                                               folder=folder)))  # fmt: skip
    t = time.perf_counter()
    client.get("/api/summary")
    first = time.perf_counter() - t
    net = study.net
    rng = np.random.default_rng(5)
    lon, lat = net.to_wgs84.transform(*net.node_xy[rng.integers(0, net.n_nodes, edits + 1)].T)
    kind = next(iter(study.layers))
    times: dict[str, list[float]] = {"add": [], "move": [], "remove": [], "speed": []}
    server: dict[str, list[float]] = {k: [] for k in times}

    def timed(key: str, call):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        out = call()
        times[key].append(time.perf_counter() - t)
        assert out.status_code == 200, out.text
        # Server-Timing: the handler's own milliseconds (work + JSON), without the client
        server[key].append(float(out.headers["server-timing"].split("dur=")[1]) / 1000)
        return out

    for i in range(edits):
        body = {"layer": kind, "lon": float(lon[i]), "lat": float(lat[i])}
        fid = timed("add", lambda b=body: client.post("/api/facilities", json=b)).json()["id"]
        move = {"lon": float(lon[i + 1]), "lat": float(lat[i + 1])}
        timed("move", lambda f=fid, m=move: client.patch(f"/api/facilities/{f}", json=m))
        timed("remove", lambda f=fid: client.delete(f"/api/facilities/{f}"))
        speed = {"speed_kmh": 3.0 + 0.01 * i}
        timed("speed", lambda s=speed: client.patch(f"/api/layers/{kind}", json=s))
    print(f"\n== {name}: first summary {first * 1000:.0f} ms")
    print("  edit      server p50 / p95      round trip p50 / p95")
    for key, values in times.items():
        ms = np.asarray(values) * 1000
        sv = np.asarray(server[key]) * 1000
        print(
            f"  {key:7s} {np.percentile(sv, 50):8.1f} / {np.percentile(sv, 95):5.1f} ms"
            f"      {np.percentile(ms, 50):8.1f} / {np.percentile(ms, 95):5.1f} ms"
        )
    allv = np.concatenate([np.asarray(v) for v in server.values()]) * 1000
    print(f"  all edits: server p95 {np.percentile(allv, 95):.1f} ms")


def example(pbf: Path) -> None:
    """The issue's budget instance: ``prepare-osm`` on westlake_10km (its 街道, residential
    buildings and OSM facility layers), served as ``app.py serve PLAN`` serves it."""
    from starlette.testclient import TestClient

    out = Path(tempfile.mkdtemp(prefix="bench-studio-osm-")) / "inputs"
    code = app.main(["prepare-osm", str(pbf), "--areas", str(OSM / "hangzhou_admin_osm.geojson"),
                     "--area-where", "in_new_shangcheng_2021=true", "--out", str(out),
                     "--quiet"])  # fmt: skip
    if code != 0:
        print(f"skipping the prepare-osm example: prepare-osm exited {code}")
        return
    args = app._parser().parse_args(["serve", str(out / "plan.toml")])
    guard, _, _ = app.studio_app(args, app.Progress(False))
    name = "westlake_10km prepare-osm example (its 街道, buildings, OSM layers; the budget)"
    bench(name, guard.session.study, edits=20, client=TestClient(guard))
    served(name, out / "plan.toml", guard.session.study)


def served(name: str, plan: Path, study: Study) -> None:
    """The same edits against ``app.py serve PLAN`` itself (uvicorn, a real socket).

    Starlette's TestClient runs the app in a thread of the measuring process; the planner's
    server is its own process, so this is the figure the budget is about.
    """
    import socket
    import subprocess

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, str(ROOT / "app.py"), "serve", str(plan), "--port", str(port), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60.0)
        for _ in range(600):  # the server prepares the study first (about 10 s)
            try:
                if client.get("/api/state").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            print(f"skipping the served run: {' '.join(cmd)} did not answer")
            return
        bench(name + ", served by app.py serve", study, edits=20, client=client)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    ns = argparse.Namespace(seed=2026, suggest=3, lang=None, basemap=None, export_crs=None)
    plan = app._demo_plan(ns, Path(tempfile.mkdtemp(prefix="bench-studio-demo-")) / "in")
    prep = app.prepare(
        plan, coords_by_layer={}, progress=app.Progress(False), synthetic=True, cache_dir=None
    )
    bench("demo (5 planning targets)", Study.route(prep.net, prep.inputs, prep.options))
    pbf = OSM / "westlake_10km.osm.pbf"
    homes_file = OSM / "hangzhou_westlake_residential_osm.geojson"
    if not (pbf.exists() and homes_file.exists()):
        print(f"skipping the real network: {OSM} not present")
        return
    example(pbf)
    net = load_network(pbf)
    homes = gpd.read_file(homes_file).representative_point()
    xy = net.project_lonlat(homes.x.to_numpy(), homes.y.to_numpy())
    xy = xy[np.random.default_rng(0).choice(len(xy), 8000, replace=False)]
    bench("westlake_10km (no targets)", Study.route(net, inputs_for(net, xy, 1)), edits=20)
    grid = grid_network(100_000, seed=1)
    study = Study.route(grid, inputs_for(grid, random_points(grid, 50_000), 2))
    bench("synthetic grid ~100k nodes, 50,000 residents (budget 200 ms)", study, edits=15)


if __name__ == "__main__":
    main()
