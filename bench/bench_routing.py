"""Routing benchmark: snapping and nearest-facility distances against networkx and pandana.

Run: ``python -m bench.bench_routing`` (from the repository root).  Every figure is printed as a
ratio against the anchors measured on the same instance in the same process, because these
machines are noisy.

Instances: the real Hangzhou walk network (../shared/data/osm/westlake_10km.osm.pbf, skipped when
absent) and a seeded synthetic grid of about 100k nodes.  Each gets 50k random points to snap and
200 facilities; nearest-facility distances use a 1125 m cutoff (15 min at 4.5 km/h).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import networkx as nx
import numpy as np
from scipy.sparse.csgraph import dijkstra

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.synthetic import grid_network, random_points  # noqa: E402
from geo.load import load_network  # noqa: E402
from geo.network import WalkNetwork  # noqa: E402
from geo.routing import _graph_with_sources, nearest_distances  # noqa: E402
from geo.snap import snap_points  # noqa: E402

CUTOFF_M = 1125.0
PBF = ROOT.parent / "shared" / "data" / "osm" / "westlake_10km.osm.pbf"


def timed(fn, repeat: int = 3):
    best = np.inf
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def bench(name: str, net: WalkNetwork) -> dict[str, float]:
    print(f"\n== {name}: {net.n_nodes:,} nodes, {net.n_edges:,} edges")
    pts = random_points(net, 50_000, seed=3)
    t_tree = timed(lambda: net.segment_index, 1)[0]  # built once per network, then cached
    t_snap, snapped = timed(lambda: snap_points(net, pts, max_snap_m=300))
    print(
        f"snap 50k points scattered over the extent: {t_snap * 1000:.0f} ms "
        f"(+ {t_tree * 1000:.0f} ms edge index, once); {snapped.unsnapped.mean():.0%} unsnapped"
    )
    rng = np.random.default_rng(5)
    homes = net.node_xy[rng.integers(0, net.n_nodes, 50_000)] + rng.normal(0, 60, (50_000, 2))
    t_homes, _ = timed(lambda: snap_points(net, homes, max_snap_m=300))
    print(f"snap 50k points near streets (homes): {t_homes * 1000:.0f} ms")

    fac = snap_points(net, random_points(net, 200, seed=4))
    t_ours, near = timed(lambda: nearest_distances(net, fac, snapped, cutoff_m=CUTOFF_M))
    ids = np.flatnonzero(~fac.unsnapped)

    def node_pass():
        g = _graph_with_sources(net, fac, ids)
        return dijkstra(g, indices=net.n_nodes + np.arange(len(ids)), limit=CUTOFF_M, min_only=True)

    t_node, _ = timed(node_pass, 5)

    # networkx multi-source Dijkstra over the node graph, from the facilities' nearest nodes
    G = nx.Graph()
    G.add_weighted_edges_from(
        zip(net.edge_u.tolist(), net.edge_v.tolist(), net.edge_length_m.tolist(), strict=True),
        weight="length",
    )
    fac_nodes = np.where(
        fac.offset_m <= net.edge_length_m[fac.edge] / 2, net.edge_u[fac.edge], net.edge_v[fac.edge]
    ).tolist()
    t_nx, _ = timed(
        lambda: nx.multi_source_dijkstra_path_length(
            G, set(fac_nodes), cutoff=CUTOFF_M, weight="length"
        ),
        1,
    )

    # networkx the OSMnx-tutorial way: one Dijkstra per facility
    t_nx1, _ = timed(
        lambda: [
            nx.single_source_dijkstra_path_length(G, s, cutoff=CUTOFF_M, weight="length")
            for s in fac_nodes[:20]
        ],
        1,
    )
    t_nx1 *= len(fac_nodes) / 20

    row = {
        "node_s": t_node,
        "snap_s": t_snap,
        "ours_s": t_ours,
        "nx_multi_s": t_nx,
        "nx_per_fac_s": t_nx1,
    }
    try:
        import pandana
        import pandas as pd

        t0 = time.perf_counter()
        pnet = pandana.Network(
            pd.Series(net.node_xy[:, 0]),
            pd.Series(net.node_xy[:, 1]),
            pd.Series(net.edge_u),
            pd.Series(net.edge_v),
            pd.DataFrame({"length": net.edge_length_m}),
            twoway=True,
        )
        pnet.precompute(CUTOFF_M)
        t_build = time.perf_counter() - t0
        fx, fy = net.node_xy[fac_nodes, 0], net.node_xy[fac_nodes, 1]
        pnet.set_pois("fac", CUTOFF_M, 1, pd.Series(fx), pd.Series(fy))
        t_pq, _ = timed(lambda: pnet.nearest_pois(CUTOFF_M, "fac", num_pois=1), 3)
        row["pandana_build_s"] = t_build
        row["pandana_query_s"] = t_pq
    except Exception as exc:  # pandana is optional: report, don't fail the benchmark
        print(f"pandana unavailable: {exc}")
    reached = np.isfinite(near.distance_m).mean()
    print(
        f"nearest facility (200 facilities, 50k residents, cutoff {CUTOFF_M:.0f} m): "
        f"ours {t_ours * 1000:.1f} ms, {reached:.1%} of residents reached"
    )
    print(f"  of which the node-level multi-source pass: {t_node * 1000:.1f} ms")
    print(
        f"  networkx multi-source Dijkstra (node level): {t_nx * 1000:.0f} ms "
        f"-> {t_nx / t_node:.0f}x our node pass, {t_nx / t_ours:.1f}x our whole call "
        "(which also resolves 50k residents on partial edges)"
    )
    print(
        f"  networkx one Dijkstra per facility: {t_nx1 * 1000:.0f} ms "
        f"-> {t_nx1 / t_node:.0f}x our node pass, {t_nx1 / t_ours:.1f}x our whole call"
    )
    if "pandana_query_s" in row:
        pq, pb = row["pandana_query_s"], row["pandana_build_s"]
        print(
            f"  pandana nearest_pois (node level): query {pq * 1000:.0f} ms "
            f"({pq / t_node:.0f}x our node pass, {pq / t_ours:.1f}x our whole call), "
            f"build+precompute {pb * 1000:.0f} ms (query+build {(pq + pb) / t_ours:.0f}x ours)"
        )
    return row


def main() -> None:
    if PBF.exists():
        t = time.perf_counter()
        net = load_network(PBF, use_cache=False)
        print(f"built Hangzhou walk network from PBF in {time.perf_counter() - t:.1f} s")
        bench("Hangzhou westlake_10km (real OSM)", net)
    else:
        print(f"skipping the real network: {PBF} not present")
    t = time.perf_counter()
    syn = grid_network(100_000, seed=1)
    print(f"\nbuilt synthetic grid in {time.perf_counter() - t:.1f} s")
    bench("synthetic grid ~100k nodes", syn)


if __name__ == "__main__":
    main()
