"""Map size and open time at city scale: 1M residents drawn as hexagons (issue 15).

Run: ``python -m bench.bench_map`` (1M nodes, 1M residents: about 4 GB and a few minutes),
``python -m bench.bench_map --nodes 200000 --residents 1000000`` for a faster run on a smaller
grid.  A seeded synthetic grid (:mod:`bench.synthetic`) with 4 facility layers x 3 thresholds
(inputs as in :mod:`bench.bench_coverage`) is analysed once; then

* the map of every resident, which is above the hexagon threshold
  (:data:`maps.coverage_map.AGGREGATE_ABOVE`), so residents are summed to H3 hexagons
  (:func:`coverage.aggregate.resident_hexes`), and
* the anchor, measured in the same run: the first 50k residents of the same result drawn one
  point each (as every study below the threshold is; forced here, 50k is above it)

are written with ``basemap="none"`` and opened in headless Chromium (``tests/chromium.py``).
Printed: file size (MB), the bytes per part of the page (Leaflet, each kind's layers, the walk
network, ...), and the time from navigation to the first frame painted after the page's
scripts ran (median of ``--repeat`` opens), with the ratio to the anchor; and, when the walk
network is not drawn at start (a city's map), the time to draw it once switched on.  Targets
(issue 15): under 20 MB and under 5 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ANCHOR_RESIDENTS = 50_000


def study(nodes: int, residents: int, *, seed: int = 1) -> Any:
    """The analysed synthetic study (a :class:`~coverage.result.StudyResult`)."""
    from bench.bench_coverage import inputs_for
    from bench.synthetic import grid_network, random_points
    from coverage.analysis import analyse

    t = time.perf_counter()
    net = grid_network(nodes, seed=seed)
    inputs = inputs_for(net, random_points(net, residents, seed=seed + 1), seed + 1)
    result = analyse(net, inputs, title=f"grid {nodes:,} nodes, {residents:,} residents")
    print(
        f"study: {net.n_nodes:,} nodes, {len(result.residents):,} residents, "
        f"{len(result.gaps):,} gap zones, "
        f"{0 if result.streets is None else len(result.streets):,} streets "
        f"(built and analysed in {time.perf_counter() - t:.0f} s)",
        flush=True,
    )
    return result


def parts(page: str) -> dict[str, int]:
    """Bytes of the page's biggest script parts, by what they draw (a rough breakdown)."""
    out: dict[str, int] = {}
    for m in re.finditer(r"<script>(.*?)</script>", page, flags=re.S):
        body = m.group(1)
        if "Leaflet" in body[:400]:
            key = "leaflet.js"
        elif "L.control.scLayers" in body:
            key = "page script (layers, panel, streets)"
        else:
            key = "other scripts"
        out[key] = out.get(key, 0) + len(body.encode())
    for name, pattern in (
        ("walk network (streets)", r'"streets":\s*\{"xy":.*?\]\]'),
        ("hexagon rings", r"var sc_hex_xy = .*?;\n"),
    ):
        found = re.search(pattern, page, flags=re.S)
        if found:
            out[name] = len(found.group(0).encode())
    return out


def open_time_s(path: Path, *, repeat: int) -> float:
    """Median seconds from navigation to the first frame painted after the scripts ran."""
    from tests.chromium import chromium

    times = []
    with chromium(window=(1400, 900), offline=True) as drv:
        drv.set_script_timeout(300)
        drv.set_page_load_timeout(300)
        for _ in range(repeat):
            drv.get("about:blank")
            t = time.perf_counter()
            drv.get(path.as_uri())  # returns after the load event: every script has run
            drv.execute_async_script(
                "const done = arguments[0];"
                " requestAnimationFrame(() => requestAnimationFrame(() => done(1)));"
            )
            times.append(time.perf_counter() - t)
        # switching the walk network on (not drawn at start on a city's map): the first
        # kind's box in the open section of the panel
        boxes = drv.find_elements("css selector", "#sc-layers details[open] label.sc-layer input")
        labels = [b.find_element("xpath", "..").text for b in boxes]
        street = next((b for b, t in zip(boxes, labels, strict=True) if "步行网络" in t), None)
        if street is not None and not street.is_selected():
            t = time.perf_counter()
            street.click()
            drv.execute_async_script(
                "const done = arguments[0];"
                " requestAnimationFrame(() => requestAnimationFrame(() => done(1)));"
            )
            print(f"switching the walk network on: {time.perf_counter() - t:.2f} s")
    return statistics.median(times)


def measure(
    result: Any, path: Path, label: str, *, repeat: int, points: bool = False
) -> tuple[float, float]:
    """Render, print size, parts and open time; return (MB, seconds).

    ``points``: every resident drawn one point each, whatever their number.
    """
    from maps.coverage_map import AGGREGATE_ABOVE, render_map

    above = len(result.residents) if points else AGGREGATE_ABOVE
    t = time.perf_counter()
    render_map(result, path, basemap="none", force=True, aggregate_above=above)
    render_s = time.perf_counter() - t
    mb = path.stat().st_size / 1e6
    page = path.read_text(encoding="utf-8")
    print(f"\n== {label}: {len(result.residents):,} residents")
    print(f"map.html {mb:.2f} MB, written in {render_s:.1f} s")
    for key, n in sorted(parts(page).items(), key=lambda kv: -kv[1]):
        print(f"  {key:40s} {n / 1e6:7.2f} MB")
    del page
    s = open_time_s(path, repeat=repeat)
    print(f"open in headless Chromium until drawn: {s:.2f} s (median of {repeat})", flush=True)
    return mb, s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1_000_000)
    ap.add_argument("--residents", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="write the maps into this folder (kept)")
    args = ap.parse_args()
    result = study(args.nodes, args.residents)
    anchor = dataclasses.replace(result, residents=result.residents.iloc[:ANCHOR_RESIDENTS])
    with tempfile.TemporaryDirectory(prefix="bench_map_") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        a_mb, a_s = measure(
            anchor,
            folder / "map_anchor.html",
            f"anchor: first {ANCHOR_RESIDENTS:,} residents drawn one point each",
            repeat=args.repeat,
            points=True,
        )
        mb, s = measure(
            result, folder / "map.html", "every resident, summed to hexagons", repeat=args.repeat
        )
    print(
        f"\n{len(result.residents):,} residents: {mb:.2f} MB (target < 20 MB, "
        f"{mb / a_mb:.2f}x the anchor), open {s:.2f} s (target < 5 s, {s / a_s:.2f}x the anchor)"
    )


if __name__ == "__main__":
    main()
