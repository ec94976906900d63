"""Seeded synthetic street networks of any size for benchmarks (a jittered grid with gaps)."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np

from geo.network import WalkNetwork, network_from_graph

UTM = 32651
X0, Y0 = 500_000.0, 3_350_000.0


def grid_graph(n_nodes: int, *, spacing_m: float = 60.0, seed: int = 1) -> nx.MultiDiGraph:
    """A jittered grid of about ``n_nodes`` nodes, 8% of the streets removed, in UTM 51N."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_nodes)))
    G = nx.MultiDiGraph(crs=f"EPSG:{UTM}")
    jitter = rng.normal(0, spacing_m * 0.15, size=(side * side, 2))
    i, j = np.divmod(np.arange(side * side), side)
    x = X0 + j * spacing_m + jitter[:, 0]
    y = Y0 + i * spacing_m + jitter[:, 1]
    G.add_nodes_from(
        (k, {"x": xk, "y": yk}) for k, xk, yk in zip(range(side * side), x, y, strict=True)
    )
    # the same draw and order as one loop over (i, j) trying east, then north
    drop = rng.random(2 * side * side) < 0.08
    k = np.arange(side * side)
    east = (j + 1 < side) & ~drop[0::2]
    north = (i + 1 < side) & ~drop[1::2]
    a = np.column_stack([k, k]).ravel()
    b = np.column_stack([k + 1, k + side]).ravel()
    keep = np.column_stack([east, north]).ravel()
    G.add_edges_from(zip(a[keep].tolist(), b[keep].tolist(), strict=True))
    return G


def grid_network(n_nodes: int, *, seed: int = 1) -> WalkNetwork:
    """:func:`grid_graph` as a WalkNetwork (largest component)."""
    return network_from_graph(grid_graph(n_nodes, seed=seed), source=f"grid{n_nodes}", crs=UTM)


def random_points(net: WalkNetwork, n: int, *, seed: int = 2) -> np.ndarray:
    """Points scattered over the network's extent, in its CRS."""
    rng = np.random.default_rng(seed)
    lo = net.node_xy.min(axis=0)
    hi = net.node_xy.max(axis=0)
    return rng.uniform(lo, hi, size=(n, 2))


def write_grid_pbf(path: str | Path, n_nodes: int, *, seed: int = 1) -> Path:
    """:func:`grid_graph`'s streets as an ``.osm.pbf`` (pyosmium's writer), for load benchmarks.

    Every grid row and column is one way, split where a street was dropped, so ways run across
    many crossings as real streets do: ``highway=footway`` for every fifth row and column (a
    walking network has paths), ``residential`` otherwise; every tenth is named.  Nodes are
    written in lon/lat (from UTM 51N), ids from 1.
    """
    import osmium
    import pyproj
    from osmium.osm.mutable import Node, Way

    path = Path(path)
    G = grid_graph(n_nodes, seed=seed)
    side = int(np.ceil(np.sqrt(n_nodes)))
    xy = np.array([(d["x"], d["y"]) for _, d in G.nodes(data=True)])
    lon, lat = pyproj.Transformer.from_crs(UTM, 4326, always_xy=True).transform(xy[:, 0], xy[:, 1])
    path.unlink(missing_ok=True)
    runs: list[tuple[list[int], str, bool]] = []
    for i in range(side):  # rows: east along j
        run = [i * side]
        for j in range(side - 1):
            k = i * side + j
            if G.has_edge(k, k + 1):
                run.append(k + 1)
            else:
                runs.append((run, f"东{i}路" if i % 10 == 0 else "", i % 5 == 2))
                run = [k + 1]
        runs.append((run, f"东{i}路" if i % 10 == 0 else "", i % 5 == 2))
    for j in range(side):  # columns: north along i
        run = [j]
        for i in range(side - 1):
            k = i * side + j
            if G.has_edge(k, k + side):
                run.append(k + side)
            else:
                runs.append((run, f"北{j}街" if j % 10 == 0 else "", j % 5 == 2))
                run = [k + side]
        runs.append((run, f"北{j}街" if j % 10 == 0 else "", j % 5 == 2))
    with osmium.SimpleWriter(str(path)) as w:
        for k in range(len(xy)):
            w.add_node(Node(id=k + 1, location=(float(lon[k]), float(lat[k]))))
        wid = 1
        for run, name, foot in runs:
            if len(run) < 2:
                continue
            tags = {"highway": "footway" if foot else "residential"}
            if name:
                tags["name"] = name
            w.add_way(Way(id=wid, nodes=[k + 1 for k in run], tags=tags))
            wid += 1
    return path
