"""HiGHS through ``scipy.optimize.milp``: one call shape for every model, and when to use it.

scipy's HiGHS takes no warm start and reports its dual bound and node count only as optional
attributes; :func:`run_milp` reads them defensively so a model can always report a bound.  What
it does pass on, verbatim, is any other HiGHS option: ``objective_bound`` is how a known
incumbent still reaches HiGHS, as a cutoff (see :func:`run_milp`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
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
    objective_cutoff: float | None = None,
) -> MilpOutcome:
    """Minimise ``offset + cost @ x`` with HiGHS, variables in [0, 1].

    A non-zero ``offset`` enters as a variable fixed at 1, so that HiGHS measures its relative
    gap on the objective the user sees (p-median minutes), not on the saving.

    ``objective_cutoff`` (HiGHS's ``objective_bound``): only solutions with an objective below
    it are of interest.  HiGHS prunes every node whose bound does not beat it, which is what
    scipy's missing warm start would otherwise give: on the westlake MCLP the proof took a
    quarter of the time.  Its answer then means less: a reported dual bound holds only for
    solutions below the cutoff, and status 2 ("infeasible") means that none exists.  Read it
    with :func:`cutoff_bound`.
    """
    t0 = time.perf_counter()
    n = cost.size
    var_lb, var_ub = np.zeros(n), np.ones(n)
    if offset:
        cost = np.append(cost, offset)
        integrality = np.append(integrality, 0.0)
        A = sp.hstack([A, sp.csr_matrix((A.shape[0], 1))], format="csr")
        var_lb, var_ub = np.append(var_lb, 1.0), np.append(var_ub, 1.0)
    options: dict[str, float] = {
        "time_limit": float(time_limit_s),
        "mip_rel_gap": float(mip_rel_gap),
    }
    extra: Mapping[str, float] = {}
    if objective_cutoff is not None:
        extra = {"objective_bound": float(objective_cutoff)}
    with warnings.catch_warnings():
        # scipy warns that options it does not list go to HiGHS verbatim: that is the intent
        warnings.filterwarnings("ignore", "Unrecognized options", RuntimeWarning)
        res = milp(
            cost,
            integrality=integrality,
            bounds=Bounds(var_lb, var_ub),
            constraints=LinearConstraint(A, lb, ub),
            options={**options, **extra},
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


def cutoff_bound(out: MilpOutcome, cutoff: float | None) -> tuple[float, bool]:
    """Proven lower bound on the minimum and whether HiGHS finished, given the cutoff it had.

    Without a cutoff that is HiGHS's dual bound.  With one, the optimum is either below the
    cutoff (then HiGHS's dual bound holds) or not (then the cutoff is a bound), so the bound is
    the smaller of the two; "infeasible" means no solution below the cutoff exists.
    """
    if cutoff is None:
        return out.dual_bound, out.status == 0
    if out.status == 2:
        return float(cutoff), True
    if out.status in (0, 1):
        return min(out.dual_bound, float(cutoff)), out.status == 0
    return -np.inf, False


def milp_note(out: MilpOutcome, time_limit_s: float, *, cutoff: bool = False) -> str:
    """One status phrase for how HiGHS ended."""
    if cutoff and out.status == 2:
        return (
            f"HiGHS proved in {out.seconds:.2f} s ({out.nodes} nodes) that no site set beats "
            "the heuristic's by more than the MIP gap"
        )
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
