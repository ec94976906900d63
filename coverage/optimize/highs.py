"""HiGHS through ``scipy.optimize.milp``: one call shape for every model, and when to use it.

scipy's HiGHS takes no warm start and reports its dual bound and node count only as optional
attributes; :func:`run_milp` reads them defensively so a model can always report a bound.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

#: ``method="auto"`` solves exactly when the model has at most this many (demand, site) pairs.
#: MCLP and LSCP have one row per demand unit; p-median and capacitated coverage have one
#: variable and one linking row per pair, hence the smaller limit.
AUTO_EXACT_MAX_PAIRS: dict[str, int] = {
    "mclp": 3_000_000,
    "lscp": 3_000_000,
    "pmedian": 400_000,
    "capacitated": 400_000,
}

#: The heuristic's LP-relaxation bound (LSCP, capacitated) is computed up to this many pairs;
#: above it the cheaper combinatorial bound alone is reported.
LP_BOUND_MAX_PAIRS = 300_000


# --------------------------------------------------------------------------------------------
# MILP plumbing


@dataclass(frozen=True)
class MilpOutcome:
    """What HiGHS returned, reduced to what the models read."""

    x: np.ndarray | None
    status: int
    message: str
    dual_bound: float  # of the minimisation, -inf when unknown
    nodes: int
    seconds: float


def run_milp(
    cost: np.ndarray,
    integrality: np.ndarray,
    A: sp.csr_matrix,
    lb: np.ndarray,
    ub: np.ndarray,
    *,
    time_limit_s: float,
    mip_rel_gap: float,
    offset: float = 0.0,
) -> MilpOutcome:
    """Minimise ``offset + cost @ x`` with HiGHS, variables in [0, 1].

    A non-zero ``offset`` enters as a variable fixed at 1, so that HiGHS measures its relative
    gap on the objective the user sees (p-median minutes), not on the saving.
    """
    t0 = time.perf_counter()
    n = cost.size
    var_lb, var_ub = np.zeros(n), np.ones(n)
    if offset:
        cost = np.append(cost, offset)
        integrality = np.append(integrality, 0.0)
        A = sp.hstack([A, sp.csr_matrix((A.shape[0], 1))], format="csr")
        var_lb, var_ub = np.append(var_lb, 1.0), np.append(var_ub, 1.0)
    res = milp(
        cost,
        integrality=integrality,
        bounds=Bounds(var_lb, var_ub),
        constraints=LinearConstraint(A, lb, ub),
        options={"time_limit": float(time_limit_s), "mip_rel_gap": float(mip_rel_gap)},
    )
    dual = getattr(res, "mip_dual_bound", None)
    if dual is None or not np.isfinite(dual):
        dual = float(res.fun) if res.status == 0 and res.fun is not None else -np.inf
    nodes = getattr(res, "mip_node_count", None) or 0
    return MilpOutcome(
        x=None if res.x is None else np.asarray(res.x)[:n],
        status=int(res.status),
        message=str(res.message),
        dual_bound=float(dual),
        nodes=int(nodes),
        seconds=time.perf_counter() - t0,
    )


def milp_note(out: MilpOutcome, time_limit_s: float) -> str:
    """One status phrase for how HiGHS ended."""
    if out.status == 0:
        return f"HiGHS finished in {out.seconds:.2f} s ({out.nodes} nodes)"
    if out.status == 1:
        return f"HiGHS stopped at its time limit ({time_limit_s:g} s, {out.nodes} nodes)"
    return f"HiGHS ended with status {out.status} ({out.message})"


def use_exact(method: str, model: str, n_pairs: int) -> bool:
    """Whether ``method`` means running HiGHS for a model with ``n_pairs`` pairs."""
    if method == "exact":
        return True
    if method == "heuristic":
        return False
    return n_pairs <= AUTO_EXACT_MAX_PAIRS[model]
