"""Location-optimization benchmark: our sparse HiGHS models and heuristic against spopt + CBC.

Run: ``python -m bench.bench_optimize`` (from the repository root; a few minutes, most of it
spopt).  Options: ``--skip-large-spopt`` skips spopt on the 20k x 3k instance (about 60 M dense
cells), ``--spopt-timeout-s`` bounds each spopt run (build + solve, wall clock).

Instances (MCLP, 15 min at 60 m/min = 900 m):

(a) the real Hangzhou walk network (../shared/data/osm/shangcheng_west_walk.graphml.gz, skipped
    when absent): 2,000 seeded demand nodes with random populations, 500 candidate nodes and 15
    existing facilities, network distances from ``geo.routing``; p = 10.
(b) synthetic: 20,000 demand points x 3,000 candidates in a 10 x 10 km square, network minutes
    stood in for by 1.3 x straight-line distance, pairs from a KD-tree; p = 20.  A 5,000 x 1,000
    instance on 5 x 5 km (p = 15) is run first, because spopt cannot finish the large one.
(c) city size, the real westlake_10km network (../shared/data/osm/westlake_10km.osm.pbf, skipped
    when absent): every network node is a demand unit with a seeded population (0-399, so some
    nodes are empty), 2,000 seeded candidate nodes, pairs within 900 m from ``geo.routing``,
    no existing facilities; p = 30.  spopt is not run on it (a 27k x 2k dense model; it could
    not build the smaller 20k x 3k one in 600 s).  Besides the exact and heuristic times it
    reports when ``solve``'s ``on_incumbent`` callback first fired (the heuristic answer and
    its bound, shown to the planner before the proof).

spopt works on a dense cost matrix and knows nothing about existing facilities, so it gets the
dense matrix built from the same pairs (unreachable cells = a huge number) and weight 0 for
demand already covered; its objective is then our "newly covered population".  spopt runs in a
child process with a wall-clock limit and a memory cap, so a run that does not finish is
reported instead of stalling or exhausting the machine.  Times are ours "build + solve" (checking
and indexing the pairs, building the model, solving) against spopt's ``from_cost_matrix`` +
``solve`` with CBC; making spopt's dense matrix is printed separately and not counted.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coverage.optimize import CoverageProblem, solve  # noqa: E402

GRAPHML = ROOT.parent / "shared" / "data" / "osm" / "shangcheng_west_walk.graphml.gz"
WESTLAKE_PBF = ROOT.parent / "shared" / "data" / "osm" / "westlake_10km.osm.pbf"
METRES_PER_MIN = 60.0
THRESHOLD_MIN = 15.0
CUTOFF_M = THRESHOLD_MIN * METRES_PER_MIN
SPOPT_CBC_LIMIT_S = 120
SPOPT_MEMORY_BYTES = 12 * 1024**3
UNREACHABLE = 1e9  # spopt's dense matrix needs a number where we simply have no pair


def best_of(fn, repeat: int = 3):
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


# ----------------------------------------------------------------------------------- instances


def hangzhou_instance(seed: int = 7) -> dict[str, Any] | None:
    if not GRAPHML.exists():
        print(f"(a) skipped: {GRAPHML} not present")
        return None
    from geo.load import load_network
    from geo.routing import nearest_distances, reachable_pairs
    from geo.snap import snap_points

    t = time.perf_counter()
    net = load_network(GRAPHML, use_cache=False)
    t_load = time.perf_counter() - t
    rng = np.random.default_rng(seed)
    nodes = rng.permutation(net.n_nodes)
    demand_nodes, cand_nodes, exist_nodes = nodes[:2000], nodes[2000:2500], nodes[2500:2515]
    demand = snap_points(net, net.node_xy[demand_nodes])
    cands = snap_points(net, net.node_xy[cand_nodes])
    existing = snap_points(net, net.node_xy[exist_nodes])
    t = time.perf_counter()
    pairs = reachable_pairs(net, cands, demand, cutoff_m=CUTOFF_M)
    near = nearest_distances(net, existing, demand, cutoff_m=CUTOFF_M)
    t_route = time.perf_counter() - t
    print(
        f"(a) Hangzhou walk network {net.n_nodes:,} nodes: loaded in {t_load:.1f} s; "
        f"{len(pairs):,} reachable pairs + nearest existing facility in {t_route:.2f} s "
        "(geo.routing, not counted below)"
    )
    return {
        "name": "Hangzhou 2k x 500, p=10",
        "weight": rng.integers(20, 800, 2000).astype(float),
        "d": pairs["target"].to_numpy(),
        "c": pairs["source"].to_numpy(),
        "minutes": pairs["distance_m"].to_numpy() / METRES_PER_MIN,
        "minutes_before": near.distance_m / METRES_PER_MIN,
        "n_demand": 2000,
        "n_cand": 500,
        "p": 10,
    }


def westlake_instance(seed: int = 2026, n_cand: int = 2000, p: int = 30) -> dict[str, Any] | None:
    if not WESTLAKE_PBF.exists():
        print(f"(c) skipped: {WESTLAKE_PBF} not present")
        return None
    from geo.load import load_network
    from geo.routing import reachable_pairs
    from geo.snap import snap_points

    t = time.perf_counter()
    net = load_network(WESTLAKE_PBF)
    t_load = time.perf_counter() - t
    rng = np.random.default_rng(seed)
    n = net.n_nodes
    t = time.perf_counter()
    demand = snap_points(net, net.node_xy)
    cands = snap_points(net, net.node_xy[rng.choice(n, n_cand, replace=False)])
    pairs = reachable_pairs(net, cands, demand, cutoff_m=CUTOFF_M)
    t_route = time.perf_counter() - t
    print(
        f"(c) westlake_10km {n:,} nodes: loaded in {t_load:.1f} s; {len(pairs):,} reachable "
        f"pairs in {t_route:.2f} s (geo.routing, not counted below)"
    )
    return {
        "name": f"westlake {n / 1000:.1f}k x {n_cand / 1000:g}k, p={p}",
        "weight": rng.integers(0, 400, n).astype(float),
        "d": pairs["target"].to_numpy(),
        "c": pairs["source"].to_numpy(),
        "minutes": pairs["distance_m"].to_numpy() / METRES_PER_MIN,
        "minutes_before": np.full(n, np.inf),
        "n_demand": n,
        "n_cand": n_cand,
        "p": p,
    }


def synthetic_instance(
    seed: int = 11, n_d: int = 20_000, n_c: int = 3_000, p: int = 20, side_m: float = 10_000.0
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    dxy = rng.uniform(0, side_m, (n_d, 2))
    cxy = rng.uniform(0, side_m, (n_c, 2))
    exy = rng.uniform(0, side_m, (max(1, int(40 * (side_m / 10_000.0) ** 2)), 2))
    t = time.perf_counter()
    radius = CUTOFF_M / 1.3
    coo = cKDTree(dxy).sparse_distance_matrix(cKDTree(cxy), radius, output_type="coo_matrix")
    e_dist, _ = cKDTree(exy).query(dxy, distance_upper_bound=radius)
    t_pairs = time.perf_counter() - t
    name = f"synthetic {n_d // 1000}k x {n_c / 1000:g}k, p={p}"
    print(f"{name}: {coo.nnz:,} pairs from a KD-tree in {t_pairs:.2f} s")
    return {
        "name": name,
        "weight": rng.integers(20, 800, n_d).astype(float),
        "d": coo.row.astype(np.int64),
        "c": coo.col.astype(np.int64),
        "minutes": 1.3 * coo.data / METRES_PER_MIN,
        "minutes_before": 1.3 * e_dist / METRES_PER_MIN,  # inf beyond the radius
        "n_demand": n_d,
        "n_cand": n_c,
        "p": p,
    }


# ----------------------------------------------------------------------------------- spopt


def _spopt_child(inst: dict[str, Any], conn) -> None:
    """Build the dense matrix, then time spopt's MCLP build and CBC solve (in a child process)."""
    resource.setrlimit(resource.RLIMIT_AS, (SPOPT_MEMORY_BYTES, SPOPT_MEMORY_BYTES))
    try:
        import pulp
        from spopt.locate import MCLP

        t = time.perf_counter()
        dense = np.full((inst["n_demand"], inst["n_cand"]), UNREACHABLE)
        dense[inst["d"], inst["c"]] = inst["minutes"]
        t_dense = time.perf_counter() - t
        conn.send(("dense", t_dense))
        covered = inst["minutes_before"] <= THRESHOLD_MIN
        w = np.where(covered, 0.0, inst["weight"])
        t = time.perf_counter()
        model = MCLP.from_cost_matrix(
            dense, w, service_radius=THRESHOLD_MIN, p_facilities=inst["p"]
        )
        t_build = time.perf_counter() - t
        conn.send(("build", t_build))
        t = time.perf_counter()
        model = model.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=SPOPT_CBC_LIMIT_S))
        t_solve = time.perf_counter() - t
        status = pulp.LpStatus[model.problem.status]
        value = float(pulp.value(model.problem.objective))
        conn.send(("solve", t_solve, status, value))
    except MemoryError:
        conn.send(("error", f"ran out of the {SPOPT_MEMORY_BYTES / 1024**3:.0f} GB memory cap"))
    except Exception as exc:  # report whatever went wrong instead of hanging the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def run_spopt(inst: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_spopt_child, args=(inst, child))
    start = time.perf_counter()
    proc.start()
    child.close()
    out: dict[str, Any] = {"finished": False}
    while True:
        left = timeout_s - (time.perf_counter() - start)
        if left <= 0 or not parent.poll(left):
            stage = "solving" if "build_s" in out else "building its model"
            out["error"] = f"still {stage} after {timeout_s:.0f} s (build + solve limit)"
            out["timeout_s"] = timeout_s
            break
        try:
            msg = parent.recv()
        except EOFError:
            out["error"] = "the spopt process died (likely the memory cap)"
            break
        if msg[0] == "dense":
            out["dense_s"] = msg[1]
            start = time.perf_counter()  # the time limit covers spopt's own build + solve
        elif msg[0] == "build":
            out["build_s"] = msg[1]
        elif msg[0] == "solve":
            out.update(solve_s=msg[1], status=msg[2], objective=msg[3], finished=True)
            break
        else:
            out["error"] = msg[1]
            break
    if proc.is_alive():
        proc.kill()
    proc.join()
    return out


# ----------------------------------------------------------------------------------- ours


def run_ours(inst: dict[str, Any]) -> dict[str, Any]:
    def build():
        return CoverageProblem.from_pairs(
            inst["weight"],
            inst["d"],
            inst["c"],
            inst["minutes"],
            threshold_min=THRESHOLD_MIN,
            n_candidates=inst["n_cand"],
            minutes_before=inst["minutes_before"],
        )

    t_build, problem = best_of(build)
    first_s: list[float] = []

    def exact_run():
        t0 = time.perf_counter()
        return solve(
            problem,
            "mclp",
            p=inst["p"],
            method="exact",
            time_limit_s=120,
            on_incumbent=lambda _sol: first_s.append(time.perf_counter() - t0),
        )

    t_exact, exact = best_of(exact_run, 2)
    t_heur, heur = best_of(lambda: solve(problem, "mclp", p=inst["p"], method="heuristic"))
    return {
        "problem": problem,
        "build_s": t_build,
        "exact": exact,
        "exact_s": t_exact,
        "first_s": min(first_s),
        "heur": heur,
        "heur_s": t_heur,
    }


def report(inst: dict[str, Any], ours: dict[str, Any], ref: dict[str, Any] | None) -> list[str]:
    ex, he = ours["exact"], ours["heur"]
    total_exact = ours["build_s"] + ours["exact_s"]
    total_heur = ours["build_s"] + ours["heur_s"]
    rows = [f"\n== {inst['name']}: {ours['problem'].n_pairs:,} pairs"]
    rows.append(
        f"ours exact     : build {ours['build_s'] * 1000:7.1f} ms + solve {ours['exact_s']:6.2f} s"
        f" -> objective {ex.objective:,.0f} ({'optimal' if ex.optimal else 'not proven'}, "
        f"gap {ex.gap:.2e}, {ex.source})"
    )
    share = he.objective / ex.objective if ex.objective else 1.0
    rows.append(
        f"ours heuristic : build {ours['build_s'] * 1000:7.1f} ms + solve {ours['heur_s']:6.2f} s"
        f" -> objective {he.objective:,.0f} = {share:.4%} of exact "
        f"(bound {he.bound:,.0f}: {he.bound_kind})"
    )
    rows.append(
        f"ours exact, first answer (on_incumbent): {ours['first_s']:.2f} s after solve() began"
    )
    if ref is None:
        rows.append("spopt          : skipped")
        return rows
    if ref.get("finished"):
        spopt_total = ref["build_s"] + ref["solve_s"]
        same = abs(ref["objective"] - ex.objective) <= 1e-6 * max(1.0, ex.objective)
        rows.append(
            f"spopt + CBC    : dense matrix {ref['dense_s']:.2f} s (not counted); build "
            f"{ref['build_s']:.2f} s + solve {ref['solve_s']:.2f} s -> objective "
            f"{ref['objective']:,.0f} ({ref['status']}; {'same' if same else 'DIFFERENT'} optimum)"
        )
        rows.append(
            f"ratio spopt / ours: exact {spopt_total / total_exact:.1f}x, "
            f"heuristic {spopt_total / total_heur:.1f}x (build + solve)"
        )
    else:
        built = f"; its build alone took {ref['build_s']:.1f} s" if "build_s" in ref else ""
        rows.append(f"spopt + CBC    : {ref.get('error')}{built}")
        if "timeout_s" in ref:
            rows.append(
                f"ratio spopt / ours: > {ref['timeout_s'] / total_exact:.0f}x exact, "
                f"> {ref['timeout_s'] / total_heur:.0f}x heuristic (spopt did not finish)"
            )
    return rows


def other_models(inst: dict[str, Any], problem: CoverageProblem) -> list[str]:
    """Our other models on the same instance, ``method="auto"``, 60 s HiGHS limit (no spopt: its
    dense p-median would have one variable per demand x candidate cell)."""
    rows = []
    for model, kw in (
        ("lscp", {}),
        ("pmedian", {"p": inst["p"]}),
        ("capacitated", {"p": inst["p"]}),
    ):
        if model == "capacitated":
            problem = CoverageProblem.from_pairs(
                inst["weight"],
                inst["d"],
                inst["c"],
                inst["minutes"],
                threshold_min=THRESHOLD_MIN,
                n_candidates=inst["n_cand"],
                minutes_before=inst["minutes_before"],
                candidate_capacity=np.random.default_rng(3).uniform(500, 8000, inst["n_cand"]),
            )
        t, sol = best_of(lambda m=model, k=kw, pr=problem: solve(pr, m, time_limit_s=60, **k), 1)
        rows.append(
            f"ours {model:<11}: {t:6.2f} s, objective {sol.objective:,.1f}, "
            f"{'optimal' if sol.optimal else 'gap ' + format(sol.gap, '.2%')} ({sol.method})"
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-large-spopt", action="store_true")
    parser.add_argument("--spopt-timeout-s", type=float, default=600.0)
    parser.add_argument(
        "--only",
        choices=("hangzhou", "mid", "synthetic", "westlake"),
        help="run one instance (westlake: the city-size MCLP, no spopt)",
    )
    args = parser.parse_args(argv)
    import platform

    import pulp
    import scipy
    import spopt

    print(
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__} (HiGHS), spopt {spopt.__version__}, "
        f"pulp {pulp.__version__} (CBC)"
    )
    if args.only == "westlake":
        print("\n".join(run_westlake()))
        return
    lines: list[str] = []
    hz = hangzhou_instance() if args.only in (None, "hangzhou") else None
    if hz is not None:
        ours = run_ours(hz)
        ref = run_spopt(hz, args.spopt_timeout_s)
        lines += report(hz, ours, ref)
        lines += other_models(hz, ours["problem"])
        print("\n".join(lines))
    if args.only in (None, "mid"):
        # a mid-size synthetic instance spopt can finish, to compare optima at scale
        mid = synthetic_instance(seed=5, n_d=5_000, n_c=1_000, p=15, side_m=5_000.0)
        ours = run_ours(mid)
        print("\n".join(report(mid, ours, run_spopt(mid, args.spopt_timeout_s))))
    if args.only in (None, "synthetic"):
        syn = synthetic_instance()
        ours = run_ours(syn)
        ref = None if args.skip_large_spopt else run_spopt(syn, args.spopt_timeout_s)
        print("\n".join(report(syn, ours, ref)))
        print("\n".join(other_models(syn, ours["problem"])))
    if args.only is None:
        print("\n".join(run_westlake()))


def run_westlake() -> list[str]:
    """(c): ours only, with HiGHS alone on the full model as the reference for the optimum."""
    wl = westlake_instance()
    if wl is None:
        return []
    ours = run_ours(wl)
    return report(wl, ours, None)


if __name__ == "__main__":
    main()
