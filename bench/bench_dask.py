"""Snap and route per partition on Dask against one process: time, memory, bytes on the wire.

Run: ``python -m bench.bench_dask`` (the Westlake study when ../shared/data/osm is present, and
a 100k grid; about 20 s), ``python -m bench.bench_dask --sizes 100000 1000000`` for the city
size (about 2 minutes; building the 1M grid takes about 25 s and 2.6 GB), ``--no-westlake`` to
skip the real data, ``--workers N`` for ``local:N`` (default 2), ``--tiles N`` for about N tiles
per grid.

Issue 15: "Peak memory per worker is bounded by the largest partition plus its halo. Measure
it."  Per instance, one run prints:

* the anchor: :func:`coverage.analysis.route_study` (snap and route in one process), its time
  and the process's peak RSS;
* :func:`coverage.distributed.route_on_dask` on ``local:N`` (single-threaded worker processes):
  wall time (the cluster's start is timed apart), partitions, the largest one (core residents,
  halo edges), per-task time on the worker (mean / max), the worker's peak RSS per task (reset
  before each task: min / max), the client's peak RSS;
* what travels over the wire: the pickled size of each :class:`~coverage.distributed.PartitionTask`
  sent (as :func:`~coverage.distributed.partition_task` made it) and of each
  :class:`~coverage.distributed.PartitionRouted` received (in the ``on_partition`` callback),
  against the whole network's arrays;
* the ratios Dask / single for time and worker peak / single peak for memory.

Each measured configuration runs in its own fresh child process, so every peak RSS is its own
(Linux ``VmHWM``, :func:`coverage.distributed.peak_rss_bytes`): one child sets the instance up
(builds and saves the grid, or runs ``app.py prepare-osm`` and fills the network cache), one runs
``route_study``, one runs Dask; both measured children read the network as a run from the
network cache does.  Both first warm up on a tiny grid (imports, and for Dask one task on each
worker), which is not timed.  Pickling for the byte counts is done on the client during the
Dask run; its time is measured and taken off the wall time.

Instances: the 9 街道 of Shangcheng on the real westlake_10km streets (as
``tests/test_dask.py`` builds them: residents and facilities from OSM by ``prepare-osm``, one
partition per 街道), and seeded synthetic grids (:mod:`bench.synthetic`) with as many residents
as nodes and 4 facility layers (inputs as :mod:`bench.bench_coverage`), cut into tiles of about
:data:`coverage.partition.RESIDENTS_PER_TILE` residents (or ``--tiles``).
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OSM = ROOT.parent / "shared" / "data" / "osm"
PBF = OSM / "westlake_10km.osm.pbf"
ADMIN = OSM / "hangzhou_admin_osm.geojson"
WESTLAKE = "westlake"

#: Grid sizes run when ``--sizes`` is not given.
DEFAULT_SIZES = [100_000]
GB = 1e9


def _nbytes(obj: Any) -> int:
    """Pickled size: what a task or a result costs on the wire (Dask pickles both)."""
    return len(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


# ------------------------------------------------------------------------------ the instances


def setup_grid(n: int, out: Path) -> dict[str, Any]:
    """Build the ``n``-node grid and save it as the network cache would (own process)."""
    import numpy as np

    from bench.synthetic import grid_network

    t = time.perf_counter()
    net = grid_network(n, seed=1)
    with out.open("wb") as fh:
        np.savez(fh, **net.arrays())
    return {"setup_s": time.perf_counter() - t}


def setup_westlake(folder: Path) -> dict[str, Any]:
    """``app.py prepare-osm`` for Shangcheng's 街道, then one read that fills the network cache."""
    t = time.perf_counter()
    cmd = [
        sys.executable,
        str(ROOT / "app.py"),
        "prepare-osm",
        str(PBF),
        "--areas",
        str(ADMIN),
        "--area-where",
        "in_new_shangcheng_2021=true",
        "--out",
        str(folder / "inputs"),
    ]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    if r.returncode != 0:
        msg = f"prepare-osm failed: {r.stderr[-2000:]}"
        raise RuntimeError(msg)
    _load(WESTLAKE, folder)  # builds the network once; the measured children read the cache
    return {"setup_s": time.perf_counter() - t}


def _load(instance: str, path: Path) -> tuple[Any, Any, Any]:
    """The network, inputs and options of an instance, read as a run from the cache reads them."""
    if instance == WESTLAKE:
        import app as cli
        from layers.plan import read_plan

        study = cli.prepare(
            read_plan(path / "inputs" / "plan.toml"),
            coords_by_layer={},
            progress=cli.Progress(False),
            synthetic=False,
            cache_dir=path / "cache",
        )
        return study.net, study.inputs, study.options
    import numpy as np

    from bench.bench_coverage import inputs_for
    from bench.synthetic import random_points
    from coverage.analysis import AnalysisOptions
    from geo.network import WalkNetwork

    n = int(instance)
    with np.load(path, allow_pickle=False) as data:
        net = WalkNetwork.from_arrays(data)
    return net, inputs_for(net, random_points(net, n, seed=2), 2), AnalysisOptions()


def _tiny() -> tuple[Any, Any, Any]:
    """A 400-node grid study for warming up (imports, lazy caches), never timed."""
    from bench.bench_coverage import inputs_for
    from bench.synthetic import grid_network, random_points
    from coverage.analysis import AnalysisOptions

    net = grid_network(400, seed=1)
    return net, inputs_for(net, random_points(net, 400), 2), AnalysisOptions()


# ------------------------------------------------------------------------- the measured children


def run_single(instance: str, path: Path) -> dict[str, Any]:
    """The anchor: ``route_study`` in this (fresh) process."""
    from coverage.analysis import check_inputs, route_study
    from coverage.distributed import peak_rss_bytes

    tiny_net, tiny_inputs, tiny_opts = _tiny()
    route_study(tiny_net, tiny_inputs, check_inputs(tiny_inputs, tiny_opts), tiny_opts)
    net, inputs, opts = _load(instance, path)
    kinds = check_inputs(inputs, opts)
    loaded = peak_rss_bytes()
    t = time.perf_counter()
    route_study(net, inputs, kinds, opts, progress=lambda _: None)
    return {
        "route_s": time.perf_counter() - t,
        "peak_gb": peak_rss_bytes() / GB,
        "peak_loaded_gb": loaded / GB,
        "nodes": net.n_nodes,
        "edges": net.n_edges,
        "residents": len(inputs.residents),
        "layers": len(kinds),
    }


def run_dask(instance: str, path: Path, *, workers: int, tiles: int | None) -> dict[str, Any]:
    """``route_on_dask`` on ``local:workers`` in this (fresh) process, with bytes per task."""
    import numpy as np

    import coverage.distributed as dist
    from coverage.analysis import check_inputs

    sent: list[int] = []
    pickling = [0.0]  # seconds spent on the byte counts, taken off the wall time
    make_task = dist.partition_task

    def sized_task(*args: Any, **kwargs: Any) -> Any:
        task = make_task(*args, **kwargs)
        t = time.perf_counter()
        sent.append(_nbytes(task))
        pickling[0] += time.perf_counter() - t
        return task

    # route_on_dask calls the module's partition_task by name: the task measured is the task sent
    dist.partition_task = sized_task

    t = time.perf_counter()
    with dist.dask_client(dist.DaskTarget("local", n_workers=workers)) as client:
        start_s = time.perf_counter() - t
        tiny_net, tiny_inputs, tiny_opts = _tiny()
        warm: list[int] = []
        dist.route_on_dask(
            tiny_net,
            tiny_inputs,
            check_inputs(tiny_inputs, tiny_opts),
            tiny_opts,
            client=client,
            n_tiles=2 * workers,
            progress=lambda _: None,
            on_partition=lambda p, r: warm.append(r.peak_rss_bytes),
        )
        sent.clear()
        pickling[0] = 0.0

        net, inputs, opts = _load(instance, path)
        kinds = check_inputs(inputs, opts)
        loaded = dist.peak_rss_bytes()
        tasks: list[tuple[int, int, float, int, int]] = []

        def on_partition(part: Any, got: Any) -> None:
            t = time.perf_counter()
            size = _nbytes(got)
            pickling[0] += time.perf_counter() - t
            tasks.append(
                (len(part.residents), len(part.edges), got.seconds, got.peak_rss_bytes, size)
            )

        t = time.perf_counter()
        dist.route_on_dask(
            net,
            inputs,
            kinds,
            opts,
            client=client,
            n_tiles=tiles,
            progress=lambda _: None,
            on_partition=on_partition,
        )
        wall = time.perf_counter() - t - pickling[0]
    client_peak = dist.peak_rss_bytes()
    res, edges, secs, peaks, back = (np.array(c) for c in zip(*tasks, strict=True))
    big = int(np.lexsort((-edges, -res))[0])  # most residents; of those, most edges
    # the whole network as a task would carry it (no names, with per-vertex distances)
    net_bytes = sum(
        a.nbytes
        for a in (
            net.node_xy,
            net.node_osmid,
            net.edge_u,
            net.edge_v,
            net.edge_length_m,
            net.coords,
            net.coord_offsets,
            net.vertex_cum_m,
        )
    )
    return {
        "route_s": wall,
        "cluster_start_s": start_s,
        "pickling_s": pickling[0],
        "workers": workers,
        "partitions": len(tasks),
        "largest_residents": int(res[big]),
        "largest_edges": int(edges[big]),
        "max_edges": int(edges.max()),
        "task_s_mean": float(secs.mean()),
        "task_s_max": float(secs.max()),
        "worker_peak_gb_min": float(peaks.min()) / GB,
        "worker_peak_gb_max": float(peaks.max()) / GB,
        "worker_warm_gb": min(warm) / GB if warm else 0.0,
        "client_peak_gb": client_peak / GB,
        "client_loaded_gb": loaded / GB,
        "sent_mb_mean": float(np.mean(sent)) / 1e6,
        "sent_mb_max": float(np.max(sent)) / 1e6,
        "sent_mb_total": float(np.sum(sent)) / 1e6,
        "back_kb_mean": float(back.mean()) / 1e3,
        "back_kb_max": float(back.max()) / 1e3,
        "back_mb_total": float(back.sum()) / 1e6,
        "network_mb": net_bytes / 1e6,
    }


# ------------------------------------------------------------------------------------ the parent


def _run(cmd: list[str], what: str, timeout_s: float) -> dict[str, Any] | None:
    """One child; its last JSON line, or None (said why) when it failed."""
    try:
        out = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        print(f"{what}: did not finish in {timeout_s:.0f} s", flush=True)
        return None
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        print(f"{what}: failed (exit {out.returncode})\n{out.stderr[-2000:]}", flush=True)
        return None
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def measure(
    instance: str, *, workers: int, tiles: int | None, timeout_s: float
) -> dict[str, Any] | None:
    """Set one instance up, then ``route_study`` and Dask, each in a fresh child process."""
    me = [sys.executable, "-m", "bench.bench_dask"]
    with tempfile.TemporaryDirectory(prefix="bench_dask_") as tmp:
        path = Path(tmp) / (WESTLAKE if instance == WESTLAKE else f"grid{instance}.npz")
        what = "Westlake" if instance == WESTLAKE else f"grid {int(instance):,}"
        setup = _run([*me, "--setup", instance, str(path)], f"{what} setup", timeout_s)
        if setup is None:
            return None
        print(f"{what}: set up in {setup['setup_s']:.1f} s", flush=True)
        single = _run([*me, "--single", instance, str(path)], f"{what} route_study", timeout_s)
        if single is None:
            return None
        extra = ["--workers", str(workers)] + ([] if tiles is None else ["--tiles", str(tiles)])
        on_dask = _run([*me, "--dask", instance, str(path), *extra], f"{what} Dask", timeout_s)
        if on_dask is None:
            return None
    row = {"instance": instance, "what": what, "single": single, "dask": on_dask}
    _report(row)
    return row


def _report(row: dict[str, Any]) -> None:
    s, d = row["single"], row["dask"]
    print(
        f"  {s['nodes']:,} nodes, {s['residents']:,} residents, {s['layers']} layers\n"
        f"  route_study: {s['route_s']:.2f} s, peak {s['peak_gb']:.2f} GB "
        f"({s['peak_loaded_gb']:.2f} GB with the inputs loaded, before routing)\n"
        f"  Dask local:{d['workers']}: {d['route_s']:.2f} s wall "
        f"(+ {d['cluster_start_s']:.1f} s cluster start, {d['pickling_s']:.2f} s of byte "
        f"counting taken off), {d['partitions']} partitions, "
        f"largest {d['largest_residents']:,} residents / {d['largest_edges']:,} edges "
        f"(most edges {d['max_edges']:,})\n"
        f"  per task: {d['task_s_mean']:.3f} s mean, {d['task_s_max']:.3f} s max; "
        f"worker peak {d['worker_peak_gb_min']:.3f}-{d['worker_peak_gb_max']:.3f} GB "
        f"(warm-up tasks {d['worker_warm_gb']:.3f} GB); client peak {d['client_peak_gb']:.2f} GB "
        f"({d['client_loaded_gb']:.2f} GB loaded)\n"
        f"  wire: sent {d['sent_mb_mean']:.2f} MB mean / {d['sent_mb_max']:.2f} MB max per task, "
        f"{d['sent_mb_total']:.1f} MB in all (whole network's arrays {d['network_mb']:.1f} MB); "
        f"back {d['back_kb_mean']:.1f} KB mean / {d['back_kb_max']:.1f} KB max per result, "
        f"{d['back_mb_total']:.2f} MB in all",
        flush=True,
    )


def table(rows: list[dict[str, Any]]) -> str:
    """The figures as Markdown, one row per instance."""
    head = [
        "study",
        "route_study (anchor): time, peak",
        "Dask wall",
        "Dask / single time",
        "partitions",
        "largest (residents, edges)",
        "task s mean / max",
        "worker peak per task min / max",
        "worker peak / single peak",
        "worker peak above libraries",
        "client peak",
        "sent per task mean / max",
        "back per result mean / max",
        "sent in all (network)",
    ]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        s, d = r["single"], r["dask"]
        cells = [
            f"{r['what']} ({s['nodes']:,} nodes, {s['residents']:,} residents)",
            f"{s['route_s']:.2f} s, {s['peak_gb']:.2f} GB",
            f"{d['route_s']:.2f} s (local:{d['workers']})",
            f"{d['route_s'] / s['route_s']:.1f}x",
            f"{d['partitions']}",
            f"{d['largest_residents']:,}, {d['largest_edges']:,}",
            f"{d['task_s_mean']:.3f} / {d['task_s_max']:.3f} s",
            f"{d['worker_peak_gb_min']:.2f} / {d['worker_peak_gb_max']:.2f} GB",
            f"{d['worker_peak_gb_max'] / s['peak_gb']:.2f}",
            f"{(d['worker_peak_gb_max'] - d['worker_warm_gb']) * 1000:.0f} MB",
            f"{d['client_peak_gb']:.2f} GB ({d['client_peak_gb'] / s['peak_gb']:.2f}x)",
            f"{d['sent_mb_mean']:.2f} / {d['sent_mb_max']:.2f} MB",
            f"{d['back_kb_mean']:.1f} / {d['back_kb_max']:.1f} KB",
            f"{d['sent_mb_total']:.1f} MB ({d['network_mb']:.1f} MB)",
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", help="grid sizes (default 100k)")
    ap.add_argument("--no-westlake", action="store_true", help="skip the real Westlake study")
    ap.add_argument("--workers", type=int, default=2, help="local worker processes (default 2)")
    ap.add_argument("--tiles", type=int, help="tiles per grid (default: 20k residents per tile)")
    ap.add_argument("--timeout-s", type=float, default=1800.0)
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    ap.add_argument("--setup", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--single", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--dask", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.setup:
        instance, path = args.setup[0], Path(args.setup[1])
        r = setup_westlake(path) if instance == WESTLAKE else setup_grid(int(instance), path)
        print(json.dumps(r))
        return
    if args.single:
        print(json.dumps(run_single(args.single[0], Path(args.single[1]))))
        return
    if args.dask:
        r = run_dask(args.dask[0], Path(args.dask[1]), workers=args.workers, tiles=args.tiles)
        print(json.dumps(r))
        return
    instances = [str(n) for n in (args.sizes if args.sizes is not None else DEFAULT_SIZES)]
    if not args.no_westlake:
        if PBF.exists() and ADMIN.exists():
            instances.insert(0, WESTLAKE)
        else:
            print(f"skipping Westlake: {PBF} or {ADMIN} not present")
    rows = []
    for instance in instances:
        row = measure(instance, workers=args.workers, tiles=args.tiles, timeout_s=args.timeout_s)
        if row is not None:
            rows.append(row)
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
