"""Seeded synthetic street networks of any size for benchmarks (a jittered grid with gaps)."""

from __future__ import annotations

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
