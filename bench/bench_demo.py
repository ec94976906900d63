"""Demo district benchmark: generation and writing must stay under 2 s (issue 3).

Run: ``python -m bench.bench_demo`` (from the repository root).  Prints the best of a few runs of
:func:`data.demo.generate_demo` and :func:`data.demo.write_demo`, the import time of the module
(geopandas and friends, paid once per process), and the time the project loader takes to build a
walk network from the written ``streets.osm``, for scale.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUDGET_S = 2.0


def best_of(fn, repeat: int = 3):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    t = time.perf_counter()
    from data.demo import generate_demo, write_demo
    from geo.load import load_network

    import_s = time.perf_counter() - t
    gen_s, district = best_of(lambda: generate_demo(seed=2026))
    with tempfile.TemporaryDirectory() as tmp:
        runs = iter(range(100))
        write_s, files = best_of(lambda: write_demo(district, Path(tmp) / f"demo{next(runs)}"))
        load_s, net = best_of(lambda: load_network(files.streets_osm, use_cache=False))
        sizes = {p.name: p.stat().st_size for p in files.folder.iterdir()}
    counts = district.metadata["counts"]
    total = gen_s + write_s
    print(
        f"demo district seed 2026: {counts['compounds']} compounds, "
        f"{counts['street_ways']} street ways, {counts['osm_nodes']} OSM nodes, "
        f"population {counts['population']}"
    )
    print(f"import data.demo (geopandas, pyogrio, pyproj): {import_s:6.3f} s (once per process)")
    print(f"generate_demo:                                 {gen_s:6.3f} s")
    print(f"write_demo (10 files):                         {write_s:6.3f} s")
    print(
        f"generate + write:                              {total:6.3f} s  "
        f"({total / BUDGET_S:.0%} of the {BUDGET_S:.0f} s budget)"
    )
    print(
        f"load_network(streets.osm), for scale:          {load_s:6.3f} s  "
        f"({net.n_nodes} nodes, {net.n_edges} edges, {net.report.length_km:.1f} km)"
    )
    print("files: " + ", ".join(f"{k} {v / 1024:.0f} kB" for k, v in sorted(sizes.items())))


if __name__ == "__main__":
    main()
