"""Growth table: time and peak memory per stage at 10k, 100k and 1M nodes (issue 15).

Run: ``python -m bench.bench_scale`` (10k and 100k), ``python -m bench.bench_scale --sizes
10000 100000 1000000`` for the city size, ``python -m bench.bench_scale --pbf 1000000`` for
loading a 1M-node ``.osm.pbf`` (written with pyosmium) cold and from the cache, and
``python -m bench.bench_scale --district-residents 1000000`` for 1M resident points on the
demo district's network (:mod:`data.demo`, about 4,500 nodes; "linear in residents too", issue
15), alone or as an extra row of the growth table (with ``--sizes``).  Each size runs
in fresh child processes (one builds the network with ``network_from_graph`` and saves it as the
network cache does, one reads it and analyses), so each peak RSS (``resource.getrusage``) is
its own, and the analysis's is what a run from the network cache needs: a seeded
synthetic grid (:mod:`bench.synthetic`) with as many residents as nodes, 4 facility layers x 3
thresholds through :func:`coverage.analysis.analyse` (inputs built as in
:mod:`bench.bench_coverage`).

The growth exponent between two sizes is the log-log slope ``log(t2 / t1) / log(n2 / n1)``:
1 is linear, 2 quadratic.  Stages below 50 ms at the smaller size are too noisy to fit and show
``-``.  Targets (issue 15): 1M nodes and 1M residents, every output, under 20 s and 3 GB; 1M
residents on a district network, 4 layers, under 20 s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: Stage columns of the table, in order (analysis stages as named by ``result.timings_s``).
STAGES = ("snap", "route", "measure", "service_areas", "gaps", "2sfca", "result")


def _peak_rss_gb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _rss_gb() -> float:
    """Resident memory of this process now (Linux ``/proc``; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024**3


def _stage(key: str) -> str:
    """The stage a ``timings_s`` key belongs to (``route_canteen`` -> ``route``)."""
    if key.startswith("service_areas"):
        return "service_areas"
    return key.split("_")[0]


def build_one(n: int, out: Path, *, seed: int = 1) -> dict[str, Any]:
    """Build the ``n``-node grid with ``network_from_graph`` and save it as the cache would."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from bench.synthetic import UTM, grid_graph
    from geo.network import network_from_graph

    graph = grid_graph(n, seed=seed)
    t = time.perf_counter()
    net = network_from_graph(graph, source=f"grid{n}", crs=UTM)  # what grid_network does
    build_s = time.perf_counter() - t
    with out.open("wb") as fh:
        np.savez(fh, **net.arrays())
    return {"network_build_s": build_s, "build_peak_rss_gb": _peak_rss_gb()}


def run_one(n: int, net_file: Path, *, seed: int = 1) -> dict[str, Any]:
    """One size in this process: the saved grid and its inputs, then one timed ``analyse``.

    The network is read from the file :func:`build_one` wrote, as a run reads its network
    cache, so the peak memory is the analysis's (plus the network and the inputs), not the
    networkx graph's.
    """
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from geo.network import WalkNetwork

    base_rss = _warm_up(seed)
    with np.load(net_file, allow_pickle=False) as data:
        net = WalkNetwork.from_arrays(data)
    return {"n": n, **_analyse_timed(net, n, f"grid {n}", seed=seed, base_rss=base_rss)}


def run_district(n_residents: int, *, seed: int = 1) -> dict[str, Any]:
    """``n_residents`` seeded resident points on the demo district's network, one ``analyse``.

    The district (:func:`data.demo.generate_demo`, its default seed) is written as the files a
    planner gets and its ``streets.osm`` loaded as a run loads it (the load is timed apart and
    shown where the grid rows show ``network_from_graph``); residents are scattered over the
    network's extent, facilities (as in :mod:`bench.bench_coverage`) sit near random nodes.
    """
    import tempfile

    sys.path.insert(0, str(ROOT))
    from data.demo import generate_demo, write_demo
    from geo.load import load_network

    base_rss = _warm_up(seed)
    with tempfile.TemporaryDirectory(prefix="bench_scale_district_") as tmp:
        files = write_demo(generate_demo(), Path(tmp) / "demo")
        t = time.perf_counter()
        net = load_network(files.streets_osm, cache_dir=Path(tmp) / "cache")
        load_s = time.perf_counter() - t
    load_peak = _peak_rss_gb()
    r = _analyse_timed(net, n_residents, "district", seed=seed, base_rss=base_rss)
    return {
        "n": n_residents,
        "label": f"district: {net.n_nodes:,} nodes, {n_residents:,} residents",
        **r,
        "network_build_s": load_s,
        "build_peak_rss_gb": load_peak,
    }


def _warm_up(seed: int) -> float:
    """Imports and lazy caches on a tiny grid, not counted; the peak RSS after it."""
    from bench.bench_coverage import inputs_for
    from bench.synthetic import grid_network, random_points
    from coverage.analysis import analyse

    tiny = grid_network(400, seed=seed)
    analyse(tiny, inputs_for(tiny, random_points(tiny, 400), 2), title="warm-up")
    return _peak_rss_gb()


def _analyse_timed(
    net: Any, n_residents: int, title: str, *, seed: int, base_rss: float
) -> dict[str, Any]:
    """Seeded inputs for ``net`` (``n_residents`` points), then one timed ``analyse``."""
    from bench.bench_coverage import inputs_for
    from bench.synthetic import random_points
    from coverage.analysis import AnalysisOptions, analyse

    inputs = inputs_for(net, random_points(net, n_residents, seed=seed + 1), seed + 1)
    rss_inputs = _peak_rss_gb()

    marks: list[tuple[str, float, float]] = []  # (step, peak so far, current) in GB

    def progress(text: str) -> None:
        marks.append((text, _peak_rss_gb(), _rss_gb()))

    t = time.perf_counter()
    r = analyse(net, inputs, title=title, options=AnalysisOptions(), progress=progress)
    wall = time.perf_counter() - t
    stages: dict[str, float] = defaultdict(float)
    for key, sec in r.timings_s.items():
        if key != "total":
            stages[_stage(key)] += sec
    # service areas and gap zones run one thread per layer: their seconds are per-layer wall
    # times that overlap, so the stages add up to more than the analysis took
    stages.setdefault("result", 0.0)
    return {
        "nodes": net.n_nodes,
        "edges": net.n_edges,
        "residents": len(inputs.residents),
        "analyse_s": wall,
        "stages_s": dict(stages),
        "gap_zones": len(r.gaps),
        "largest_gap_km2": float(r.gaps["area_km2"].max()) if len(r.gaps) else 0.0,
        "peak_rss_gb": _peak_rss_gb(),
        "rss_before_analyse_gb": rss_inputs,
        "rss_warm_gb": base_rss,
        "rss_marks": marks,
        "load_avg": os.getloadavg(),
    }


def load_one(pbf: Path, cache_dir: Path) -> dict[str, Any]:
    """Time ``load_network`` on a PBF in this process (cold or warm: whatever the cache holds)."""
    sys.path.insert(0, str(ROOT))
    from geo.load import load_network

    t = time.perf_counter()
    net = load_network(pbf, cache_dir=cache_dir)
    return {
        "load_s": time.perf_counter() - t,
        "nodes": net.n_nodes,
        "edges": net.n_edges,
        "peak_rss_gb": _peak_rss_gb(),
        "load_avg": os.getloadavg(),
    }


def pbf_loads(n: int, timeout_s: float) -> None:
    """Write a seeded grid PBF of ``n`` nodes, then load it cold and from the cache.

    Each load runs in a fresh process, so the warm figure is the cache read alone, not a
    network still in memory.
    """
    import tempfile

    sys.path.insert(0, str(ROOT))
    from bench.synthetic import write_grid_pbf

    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        t = time.perf_counter()
        pbf = write_grid_pbf(Path(tmp) / f"grid{n}.osm.pbf", n)
        mb = pbf.stat().st_size / 1e6
        print(f"wrote {pbf.name} ({mb:.1f} MB) in {time.perf_counter() - t:.1f} s")
        for mode in ("cold", "warm"):
            cmd = [
                sys.executable,
                "-m",
                "bench.bench_scale",
                "--load",
                str(pbf),
                str(Path(tmp) / "cache"),
            ]
            out = subprocess.run(
                cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
            )
            lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
            if out.returncode != 0 or not lines:
                print(f"{mode} load failed (exit {out.returncode})\n{out.stderr[-2000:]}")
                return
            r = json.loads(lines[-1])
            print(
                f"{mode} load: {r['load_s']:.2f} s, {r['nodes']:,} nodes, {r['edges']:,} edges, "
                f"peak {r['peak_rss_gb']:.2f} GB, load average {r['load_avg'][0]:.1f}"
            )


def _run(cmd: list[str], what: str, timeout_s: float) -> dict[str, Any] | None:
    try:
        out = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        print(f"{what}: did not finish in {timeout_s:.0f} s")
        return None
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        print(f"{what}: failed (exit {out.returncode})\n{out.stderr[-2000:]}")
        return None
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _child(n: int, timeout_s: float) -> dict[str, Any] | None:
    """Build in one fresh process, analyse in another: each peak RSS is its own."""
    import tempfile

    me = [sys.executable, "-m", "bench.bench_scale"]
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        net_file = Path(tmp) / f"grid{n}.npz"
        built = _run([*me, "--build", str(n), str(net_file)], f"{n:,} build", timeout_s)
        if built is None:
            return None
        r = _run([*me, "--one", str(n), str(net_file)], f"{n:,}", timeout_s)
    return None if r is None else {**r, **built}


def _slope(a: float, b: float, na: float, nb: float) -> str:
    if a < 0.05 or b <= 0:
        return "-"
    return f"{math.log(b / a) / math.log(nb / na):.2f}"


def table(rows: list[dict[str, Any]]) -> str:
    """The growth table as Markdown, with an exponent row between consecutive sizes."""
    head = [
        "size",
        "analyse",
        *STAGES,
        "peak RSS",
        "network_from_graph or load (its peak)",
        "gap zones (largest km2)",
    ]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    prev = None
    for r in rows:
        cells = [
            r.get("label", f"{r['nodes']:,} nodes, {r['residents']:,} residents"),
            f"{r['analyse_s']:.2f} s",
            *(f"{r['stages_s'].get(s, 0.0):.2f}" for s in STAGES),
            f"{r['peak_rss_gb']:.2f} GB",
            f"{r['network_build_s']:.2f} s ({r['build_peak_rss_gb']:.2f} GB)",
            f"{r['gap_zones']:,} ({r['largest_gap_km2']:.2f})",
        ]
        if prev is not None and "label" not in r:
            na, nb = prev["nodes"], r["nodes"]
            exp = [
                f"exponent {prev['n']:,} -> {r['n']:,}",
                _slope(prev["analyse_s"], r["analyse_s"], na, nb),
                *(
                    _slope(prev["stages_s"].get(s, 0.0), r["stages_s"].get(s, 0.0), na, nb)
                    for s in STAGES
                ),
                _slope(prev["peak_rss_gb"], r["peak_rss_gb"], na, nb),
                _slope(prev["network_build_s"], r["network_build_s"], na, nb),
                "",
            ]
            out.append("| " + " | ".join(exp) + " |")
        out.append("| " + " | ".join(cells) + " |")
        prev = r if "label" not in r else prev
    return "\n".join(out)


def _report(what: str, r: dict[str, Any]) -> None:
    print(
        f"{what}: analyse {r['analyse_s']:.2f} s, peak {r['peak_rss_gb']:.2f} GB, "
        f"load average {r['load_avg'][0]:.1f}",
        flush=True,
    )
    stages = ", ".join(
        f"{k} {v:.2f}" for k, v in sorted(r["stages_s"].items(), key=lambda kv: -kv[1])
    )
    print(f"  seconds per stage: {stages}")
    print("  memory when each step starts (GB now / peak so far):")
    for text, peak, cur in r["rss_marks"]:
        print(f"    {cur:5.2f} / {peak:5.2f}  {text}")


#: Grid sizes run when neither ``--sizes`` nor ``--district-residents`` is given.
DEFAULT = [10_000, 100_000]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", help="grid sizes (default 10k and 100k)")
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--build", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--load", nargs=2, type=Path, help=argparse.SUPPRESS)
    ap.add_argument(
        "--pbf", type=int, metavar="N", help="only: write an N-node grid PBF, load it cold and warm"
    )
    ap.add_argument(
        "--district-residents",
        type=int,
        metavar="N",
        help="also: N seeded residents on the demo district's network (after any --sizes)",
    )
    ap.add_argument("--district", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--timeout-s", type=float, default=1800.0)
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    args = ap.parse_args()
    if args.one:
        r = run_one(int(args.one[0]), Path(args.one[1]))
        print(json.dumps(r))
        return
    if args.district:
        print(json.dumps(run_district(args.district)))
        return
    if args.build:
        print(json.dumps(build_one(int(args.build[0]), Path(args.build[1]))))
        return
    if args.load:
        print(json.dumps(load_one(*args.load)))
        return
    if args.pbf:
        pbf_loads(args.pbf, args.timeout_s)
        return
    sizes = args.sizes if args.sizes is not None else ([] if args.district_residents else DEFAULT)
    rows = []
    for n in sizes:
        r = _child(n, args.timeout_s)
        if r is None:
            break
        _report(f"{n:,}", r)
        rows.append(r)
    if args.district_residents:
        me = [sys.executable, "-m", "bench.bench_scale"]
        what = f"district, {args.district_residents:,} residents"
        r = _run([*me, "--district", str(args.district_residents)], what, args.timeout_s)
        if r is not None:
            _report(what, r)
            rows.append(r)
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
