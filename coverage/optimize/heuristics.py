"""Fast heuristics behind :mod:`coverage.optimize`: greedy, interchange (swap) and their bounds.

MCLP and p-median share one structure, the *saving* (reduction) form of facility location: every
demand unit ``i`` has a weight ``w_i`` and a cost ``b_i`` it pays without new sites; opening
candidate ``j`` lets it pay ``m_ij`` instead when the pair is listed and ``m_ij < b_i``.  The value
of a set ``S`` is ``R(S) = sum_i w_i (b_i - min(b_i, min_{j in S} m_ij))``.  MCLP is the case
``b = 1``, ``m = 0`` (the saving is the newly covered weight); p-median uses minutes.  ``R`` is
monotone submodular, which gives the greedy its ``1 - 1/e`` guarantee and a cheap *online* bound:
for every greedy prefix ``S_k``, ``R(OPT) <= R(S_k) + (sum of the p largest marginal gains at
S_k)`` [Minoux 1978; Leskovec et al. 2007].  Everything works on the sparse pairs, one
``np.bincount`` per greedy step or swap round, never on a dense matrix.

The capacitated greedy is separate: its gains are capped by capacities and it assigns demand
nearest-first, so it is a heuristic without a guarantee; its bound comes from the LP relaxation.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)

#: ``1 - 1/e``: the greedy's worst-case share of the optimum for monotone submodular coverage.
GREEDY_RATIO = 1.0 - 1.0 / np.e


def gather_rows(ptr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Positions of all entries of CSR rows ``rows`` (concatenated), without a Python loop."""
    rows = np.asarray(rows, dtype=np.int64)
    starts = ptr[rows]
    lens = ptr[rows + 1] - starts
    total = int(lens.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.repeat(starts - np.cumsum(lens) + lens, lens)
    return np.arange(total, dtype=np.int64) + offsets


def group_order(keys: np.ndarray, n_keys: int) -> np.ndarray:
    """Stable order that groups equal integer ``keys`` (a counting sort, O(n + n_keys)).

    Twice as fast as ``np.argsort(kind="stable")`` on a million pairs: scipy's CSR -> CSC
    conversion is exactly a stable counting sort.
    """
    n = int(keys.size)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    m = sp.csr_matrix(
        (np.arange(n, dtype=np.int64), keys.astype(np.int64), np.array([0, n])),
        shape=(1, max(int(n_keys), 1)),
    )
    return np.asarray(m.tocsc().data, dtype=np.int64)


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """``a @ b`` for 1-D float arrays without BLAS.

    OpenBLAS runs a dot product of more than about 10,000 entries on several threads.  On a
    machine whose other cores are busy (a shared server, the studio next to its web server)
    every call then waits for a thread to be scheduled: the Lagrangian's one dot product per
    iteration made it four times slower on two busy cores.  ``einsum`` without ``optimize``
    sums in its own single-threaded loop, as fast when the cores are free.
    """
    return float(np.einsum("i,i->", a, b))


def top_sum(values: np.ndarray, k: int) -> float:
    """Sum of the ``k`` largest non-negative entries (0 when ``k`` is 0)."""
    if k <= 0 or values.size == 0:
        return 0.0
    k = min(k, values.size)
    part = np.partition(values, values.size - k)[values.size - k :]
    return float(np.clip(part, 0.0, None).sum())


@dataclass(frozen=True, eq=False)
class SavingInstance:
    """A facility-location instance in saving form, pairs sorted by candidate.

    Attributes
    ----------
    weight, base
        Per modelled demand unit (local index): weight (> 0) and cost without new sites.
    pair_demand, pair_candidate, pair_cost
        Only *improving* pairs (``cost < base``); candidate indices are global.
    cand_ptr
        CSR pointer over the pairs by candidate (length ``n_candidates + 1``).
    """

    weight: np.ndarray
    base: np.ndarray
    pair_demand: np.ndarray
    pair_candidate: np.ndarray
    pair_cost: np.ndarray
    cand_ptr: np.ndarray
    n_candidates: int

    @classmethod
    def build(
        cls,
        weight: np.ndarray,
        base: np.ndarray,
        pair_demand: np.ndarray,
        pair_candidate: np.ndarray,
        pair_cost: np.ndarray,
        n_candidates: int,
    ) -> SavingInstance:
        """Keep the improving pairs and index them by candidate."""
        keep = pair_cost < base[pair_demand]
        d, c, m = pair_demand[keep], pair_candidate[keep], pair_cost[keep]
        order = group_order(c, n_candidates)
        d, c, m = d[order], c[order], m[order]
        ptr = np.zeros(n_candidates + 1, dtype=np.int64)
        np.cumsum(np.bincount(c, minlength=n_candidates), out=ptr[1:])
        return cls(
            weight=np.asarray(weight, dtype=np.float64),
            base=np.asarray(base, dtype=np.float64),
            pair_demand=d.astype(np.int64),
            pair_candidate=c.astype(np.int64),
            pair_cost=m.astype(np.float64),
            cand_ptr=ptr,
            n_candidates=n_candidates,
        )

    @cached_property
    def cand_matrix(self) -> sp.csr_matrix:
        """(n_candidates, n_units) 0/1 incidence, built on the pair arrays without copying."""
        return sp.csr_matrix(
            (np.ones(self.n_pairs), self.pair_demand, self.cand_ptr),
            shape=(self.n_candidates, self.weight.size),
        )

    @cached_property
    def is_coverage(self) -> bool:
        """All pair costs are 0 (MCLP/LSCP): gains are one sparse mat-vec."""
        return not np.any(self.pair_cost)

    @property
    def n_pairs(self) -> int:
        """Number of improving pairs."""
        return int(self.pair_demand.size)

    @property
    def max_saving(self) -> float:
        """Saving if every demand unit got its cheapest listed pair (an upper bound)."""
        best = self.base.copy()
        np.minimum.at(best, self.pair_demand, self.pair_cost)
        return dot(self.weight, self.base - best)

    def useful_candidates(self) -> np.ndarray:
        """Candidates with at least one improving pair."""
        return np.flatnonzero(np.diff(self.cand_ptr) > 0)

    def restrict(self, candidates: np.ndarray) -> SavingInstance:
        """The same instance with only the pairs of ``candidates`` (cheap: slices by candidate)."""
        pos = gather_rows(self.cand_ptr, np.asarray(candidates, dtype=np.int64))
        return SavingInstance.build(
            self.weight,
            self.base,
            self.pair_demand[pos],
            self.pair_candidate[pos],
            self.pair_cost[pos],
            self.n_candidates,
        )

    def reduced(self, fixed_in: np.ndarray, free: np.ndarray) -> SavingInstance:
        """What is left to decide once ``fixed_in`` are open and only ``free`` may be added.

        Units are renumbered to those that a free site can still improve; candidate indices
        stay global.  Savings of the result are on top of what ``fixed_in`` give.
        """
        base = self.cost_with(fixed_in)
        pos = gather_rows(self.cand_ptr, np.asarray(free, dtype=np.int64))
        d, c, m = self.pair_demand[pos], self.pair_candidate[pos], self.pair_cost[pos]
        keep = m < base[d]
        d, c, m = d[keep], c[keep], m[keep]
        reached = np.zeros(self.weight.size, dtype=bool)
        reached[d] = True
        units = np.flatnonzero(reached)
        local_of = np.cumsum(reached) - 1
        return SavingInstance.build(
            self.weight[units], base[units], local_of[d], c, m, self.n_candidates
        )

    def gains(self, cost_now: np.ndarray) -> np.ndarray:
        """Marginal saving of every candidate given each unit's current cost."""
        if self.is_coverage:
            return np.asarray(self.cand_matrix @ (self.weight * np.maximum(cost_now, 0.0)))
        d = self.pair_demand
        saving = self.weight[d] * np.maximum(cost_now[d] - self.pair_cost, 0.0)
        return np.bincount(self.pair_candidate, weights=saving, minlength=self.n_candidates)

    def open_site(self, cost_now: np.ndarray, j: int) -> float:
        """Lower ``cost_now`` in place for site ``j``; return the saving it brought."""
        s, e = self.cand_ptr[j], self.cand_ptr[j + 1]
        d = self.pair_demand[s:e]
        new = np.minimum(cost_now[d], self.pair_cost[s:e])
        gain = dot(self.weight[d], cost_now[d] - new)
        cost_now[d] = new
        return gain

    def cost_with(self, sites: np.ndarray) -> np.ndarray:
        """Each unit's cost when ``sites`` are open."""
        cost = self.base.copy()
        pos = gather_rows(self.cand_ptr, np.asarray(sites, dtype=np.int64))
        np.minimum.at(cost, self.pair_demand[pos], self.pair_cost[pos])
        return cost

    def saving(self, sites: np.ndarray) -> float:
        """``R(sites)``, computed exactly from the pairs."""
        return dot(self.weight, self.base - self.cost_with(sites))


def undominated(inst: SavingInstance, candidates: np.ndarray) -> np.ndarray:
    """The ``candidates`` left once every one whose units another covers too is dropped.

    For coverage (MCLP, all pair costs 0) with non-negative weights, a candidate ``r`` whose
    set of units is a subset of another candidate ``c``'s never needs to be opened: swap it
    for ``c`` (or just close it, if ``c`` is open) and no unit loses coverage.  This holds for
    the LP relaxation too, so dropping ``r`` keeps both the optimum and the bound.  Of equal
    sets the lowest index stays; domination by index and size is a strict order, so chains
    always keep their top.  A quarter to a third of the candidates go on the benchmark
    instances, and the MILP after Lagrangian fixing solves up to twice as fast without them.
    Subsets come from one sparse product (intersection sizes of every candidate pair).
    """
    cands = np.asarray(candidates, dtype=np.int64)
    if cands.size < 2 or not inst.is_coverage:
        return cands
    M = inst.cand_matrix[cands]
    size = np.diff(M.indptr)
    inter = (M @ M.T).tocoo()
    r, c, v = inter.row, inter.col, inter.data
    dom = (r != c) & (v == size[r]) & ((size[c] > size[r]) | (c < r))
    out = np.ones(cands.size, dtype=bool)
    out[r[dom]] = False
    return cands[out]


@dataclass(frozen=True)
class UnitGroups:
    """Units with identical candidate sets merged into one row (coverage instances only)."""

    weight: np.ndarray  # summed weight per group
    pair_group: np.ndarray  # group of each pair of the representative units
    pair_candidate: np.ndarray

    @property
    def n_groups(self) -> int:
        """Number of distinct candidate sets."""
        return int(self.weight.size)


def group_units(inst: SavingInstance) -> UnitGroups:
    """Merge units whose candidate sets are identical (exact for MCLP and LSCP rows).

    A coverage row only depends on which candidates reach the unit, so units sharing a set
    become one row with the summed weight.  Sets are compared by two independent random 64-bit
    sums plus their size (a false merge has probability about 2^-128 per pair).  Once
    Lagrangian fixing has left few candidates free, most units share a handful of sets and
    the MILP shrinks several-fold.
    """
    d, c = inst.pair_demand, inst.pair_candidate
    n_u = inst.weight.size
    rng = np.random.default_rng(20261123)
    keys = []
    for _ in range(2):
        r = rng.integers(0, np.iinfo(np.int64).max, inst.n_candidates, dtype=np.int64)
        h = np.zeros(n_u, dtype=np.uint64)
        np.add.at(h, d, r[c].astype(np.uint64))
        keys.append(h)
    keys.append(np.bincount(d, minlength=n_u).astype(np.uint64))
    table = np.stack(keys, axis=1)
    _, first, inverse = np.unique(table, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    weight = np.bincount(inverse, weights=inst.weight, minlength=first.size)
    is_rep = np.zeros(n_u, dtype=bool)
    is_rep[first] = True
    keep = is_rep[d]
    return UnitGroups(weight=weight, pair_group=inverse[d[keep]], pair_candidate=c[keep])


@dataclass(frozen=True)
class GreedyResult:
    """Sites in the order the greedy took them, their marginal savings and the online bound."""

    order: np.ndarray
    gains: np.ndarray
    saving: float
    bound: float  # upper bound on R(OPT) for p sites (min of online and 1-1/e bounds)
    bound_kind: str


def greedy(
    inst: SavingInstance, p: int, *, tol: float = 0.0, target: float | None = None
) -> GreedyResult:
    """Greedy for ``R`` with ``p`` sites; stops early when no site saves more than ``tol``.

    With ``target`` it also stops as soon as ``R >= target - tol`` (the set-cover greedy).

    Gains are recomputed from the pairs each step (one bincount, O(pairs)): simpler than a lazy
    priority queue and as fast in numpy for the p <= a few hundred asked here.  The bound is the
    smallest of the online bounds over all prefixes and ``R(greedy) / (1 - 1/e)``.
    """
    cost = inst.base.copy()
    order: list[int] = []
    gains: list[float] = []
    value = 0.0
    online = np.inf
    g = inst.gains(cost)
    for _ in range(p):
        if target is not None and value >= target - tol:
            break
        online = min(online, value + top_sum(g, p))
        j = int(np.argmax(g)) if g.size else 0
        if g.size == 0 or g[j] <= tol:
            break
        gain = inst.open_site(cost, j)
        order.append(j)
        gains.append(gain)
        value += gain
        g = inst.gains(cost)
    online = min(online, value + top_sum(g, p))
    ratio_bound = value / GREEDY_RATIO
    if ratio_bound < online:
        bound, kind = ratio_bound, "greedy 1-1/e bound"
    else:
        bound, kind = online, "submodular online bound (greedy value + p largest gains)"
    return GreedyResult(
        order=np.asarray(order, dtype=np.int64),
        gains=np.asarray(gains, dtype=np.float64),
        saving=value,
        bound=max(bound, value),
        bound_kind=kind,
    )


def order_by_gain(inst: SavingInstance, sites: np.ndarray, *, tol: float = 0.0) -> GreedyResult:
    """Greedy order of a given set of sites (what the planner builds first, second, ...).

    Sites whose marginal saving is at most ``tol`` once the others are open are left out: with a
    submodular ``R`` they come last in greedy order and removing them does not change ``R``.
    """
    sites = np.unique(np.asarray(sites, dtype=np.int64))
    if sites.size == 0:
        return GreedyResult(np.empty(0, np.int64), np.empty(0), 0.0, 0.0, "none")
    sub = inst.restrict(sites)
    res = greedy(sub, int(sites.size), tol=tol)
    return GreedyResult(res.order, res.gains, res.saving, res.saving, "given set")


def swap(
    inst: SavingInstance,
    sites: np.ndarray,
    *,
    tol: float = 0.0,
    max_rounds: int = 200,
    time_budget_s: float = 5.0,
) -> np.ndarray:
    """Best-improvement 1-opt interchange (Teitz-Bart) from ``sites``; returns the new sites.

    Each round evaluates every (close s, open j) move at once with the two-closest bookkeeping of
    the fast interchange [Whitaker 1983]: per demand unit, the best cost ``d1`` (and the open site
    giving it) and the second best ``d2`` over the open sites and the base cost.  Then
    ``delta(s, j) = G_j - L_s + H_sj`` with ``G`` the gain of adding ``j``, ``L`` the loss of
    closing ``s`` and ``H`` a sparse correction over pairs whose best site is ``s``.  Because
    ``H >= 0``, the best move without a correction term is ``max G - min L``, so the whole
    neighbourhood is searched without a dense ``p x n_candidates`` matrix.
    """
    S = np.array(sites, dtype=np.int64)
    p = S.size
    if p == 0 or inst.n_pairs == 0:
        return S
    deadline = time.perf_counter() + time_budget_s
    w, base = inst.weight, inst.base
    d_all, c_all, m_all = inst.pair_demand, inst.pair_candidate, inst.pair_cost
    pos_of = np.full(inst.n_candidates, -1, dtype=np.int64)
    for rounds in range(max_rounds):
        if time.perf_counter() > deadline:
            logger.info("swap stopped by its time budget after %d rounds", rounds)
            break
        pos_of[:] = -1
        pos_of[S] = np.arange(p)
        # two best open options per unit (the base option never closes)
        pos = gather_rows(inst.cand_ptr, S)
        pd, pc, pm = d_all[pos], c_all[pos], m_all[pos]
        o = np.lexsort((pm, pd))
        pd, pc, pm = pd[o], pc[o], pm[o]
        first = np.ones(pd.size, dtype=bool)
        first[1:] = pd[1:] != pd[:-1]
        d1 = base.copy()
        owner = np.full(base.size, -1, dtype=np.int64)
        fi = np.flatnonzero(first)
        d1[pd[fi]] = pm[fi]
        owner[pd[fi]] = pos_of[pc[fi]]
        d2 = base.copy()
        second = fi + 1
        second = second[second < pd.size]
        second = second[~first[second]]
        d2[pd[second]] = pm[second]
        # G_j: saving of adding j to the current set
        G = inst.gains(d1)
        G[S] = -np.inf
        # L_s: loss of closing s (its units fall back to their second best)
        owned = owner >= 0
        L = np.bincount(owner[owned], weights=w[owned] * (d2[owned] - d1[owned]), minlength=p)
        # H_sj over pairs (i, j) with owner(i) = s and m_ij < d2_i
        own_pair = owner[d_all]
        mask = (own_pair >= 0) & (m_all < d2[d_all])
        best_delta = float(G.max() - L.min())
        best_s, best_j = int(np.argmin(L)), int(np.argmax(G))
        if mask.any():
            dm = d_all[mask]
            H = sp.coo_matrix(
                (w[dm] * (d2[dm] - np.maximum(m_all[mask], d1[dm])), (own_pair[mask], c_all[mask])),
                shape=(p, inst.n_candidates),
            ).tocsr()
            H.sum_duplicates()
            rows = np.repeat(np.arange(p), np.diff(H.indptr))
            vals = G[H.indices] - L[rows] + H.data
            if vals.size:
                k = int(np.argmax(vals))
                if vals[k] > best_delta:
                    best_delta, best_s, best_j = float(vals[k]), int(rows[k]), int(H.indices[k])
        if not np.isfinite(best_delta) or best_delta <= tol:
            break
        logger.debug("swap: close %d, open %d, +%.3f", S[best_s], best_j, best_delta)
        S[best_s] = best_j
    return S


@dataclass(frozen=True)
class CapacitatedGreedy:
    """Sites taken by the capacity-aware greedy and the weight it assigned to each."""

    order: np.ndarray
    gains: np.ndarray


def capacitated_greedy(
    weight: np.ndarray,
    pair_demand: np.ndarray,
    pair_candidate: np.ndarray,
    pair_minutes: np.ndarray,
    capacity: np.ndarray,
    n_candidates: int,
    p: int,
    *,
    allowed: np.ndarray | None = None,
    tol: float = 0.0,
) -> CapacitatedGreedy:
    """Greedy for capacitated coverage: take the site that can serve the most unserved weight.

    A site's gain is ``min(capacity, unserved weight it reaches)``; once taken it serves its
    reachable units nearest-first (splitting the last one) until full.  ``weight`` is the
    unserved weight per unit (units already served count 0).  The caller re-optimises the
    assignment of the chosen set with an LP, which can only serve more.
    """
    residual = np.asarray(weight, dtype=np.float64).copy()
    by_minutes = np.argsort(pair_minutes, kind="stable")
    order_c = by_minutes[group_order(pair_candidate[by_minutes], n_candidates)]
    d, c = pair_demand[order_c], pair_candidate[order_c]
    ptr = np.zeros(n_candidates + 1, dtype=np.int64)
    np.cumsum(np.bincount(c, minlength=n_candidates), out=ptr[1:])
    taken = np.zeros(n_candidates, dtype=bool)
    if allowed is not None:
        taken |= ~allowed
    order: list[int] = []
    gains: list[float] = []
    for _ in range(p):
        reach = np.bincount(c, weights=residual[d], minlength=n_candidates)
        g = np.minimum(reach, capacity)
        g[taken] = -np.inf
        j = int(np.argmax(g))
        if not np.isfinite(g[j]) or g[j] <= tol:
            break
        units = d[ptr[j] : ptr[j + 1]]
        want = residual[units]
        before = np.cumsum(want) - want
        take = np.clip(capacity[j] - before, 0.0, want)
        residual[units] -= take
        taken[j] = True
        order.append(j)
        gains.append(float(take.sum()))
    return CapacitatedGreedy(np.asarray(order, dtype=np.int64), np.asarray(gains))


@dataclass(frozen=True)
class LagrangianResult:
    """Outcome of the Lagrangian relaxation of MCLP (coverage rows relaxed)."""

    bound: float  # smallest L(lambda) seen: an upper bound on the newly covered weight
    multipliers: np.ndarray  # lambda giving that bound
    sites: np.ndarray  # best feasible site set met on the way
    value: float  # its newly covered weight
    iterations: int
    step_factor: float = 2.0  # Polyak factor reached, to continue from where this run stopped


def _lagrangian_value(
    inst: SavingInstance, lam: np.ndarray, p: int
) -> tuple[float, np.ndarray, np.ndarray]:
    """L(lambda), the candidate scores g and the p best candidates."""
    g = np.asarray(inst.cand_matrix @ lam)
    k = min(p, g.size)
    top = np.argpartition(-g, k - 1)[:k] if k > 0 else np.empty(0, dtype=np.int64)
    value = float(np.clip(inst.weight - lam, 0.0, None).sum() + g[top].sum())
    return value, g, top


def lagrangian_coverage(
    inst: SavingInstance,
    p: int,
    *,
    start: np.ndarray,
    tol: float,
    max_iter: int = 800,
    swap_every: int = 200,
    time_budget_s: float = 1.0,
    warm: LagrangianResult | None = None,
) -> LagrangianResult:
    """Subgradient optimisation of the Lagrangian relaxation of MCLP [Galvao & ReVelle 1996].

    Relaxing ``y_i <= sum_j a_ij x_j`` with multipliers ``0 <= lambda_i <= w_i`` leaves
    ``L(lambda) = sum_i (w_i - lambda_i) + (sum of the p largest g_j)``, ``g_j = sum_i a_ij
    lambda_i``: one sparse mat-vec per iteration.  ``min L`` equals the LP bound (the
    subproblem has the integrality property), which for MCLP is usually within a fraction of a
    percent of the optimum, far tighter than the greedy bounds.  Every iterate's p best
    candidates are a feasible solution; every ``swap_every`` iterations they are also improved by
    interchange, which finds near-optimal sites once the multipliers settle.  Step: Polyak's
    rule towards the best known value along a deflected direction (``d = s + 0.7 d_prev``,
    Camerini-Fratta-Maffioli), halving the step factor after 30 iterations without a better
    bound; on the benchmark instances deflection closes about half of the distance that plain
    subgradient steps leave to the LP bound.

    ``warm`` continues an earlier run on the same instance (its best multipliers, bound, sites
    and step factor): the exact path first runs the heuristic's iterations, shows that answer,
    then continues instead of starting over.
    """
    deadline = time.perf_counter() + time_budget_s
    w = inst.weight
    lam = w.copy()  # L(w) = the p largest single-site gains
    best_sites = np.asarray(start, dtype=np.int64)
    best_value = inst.saving(best_sites)
    best_bound, best_lam = np.inf, lam.copy()
    mu, stall, it = 2.0, 0, 0
    if warm is not None:
        lam, best_lam = warm.multipliers.copy(), warm.multipliers.copy()
        best_bound, mu = warm.bound, warm.step_factor
        if warm.value > best_value:
            best_sites, best_value = warm.sites, warm.value
    n_u = w.size
    direction = np.zeros(n_u)
    if p <= 0 or inst.n_pairs == 0:
        return LagrangianResult(max(best_value, 0.0), lam, best_sites, best_value, 0)
    for it in range(1, max_iter + 1):
        value, _g, top = _lagrangian_value(inst, lam, p)
        if value < best_bound - tol:
            best_bound, best_lam, stall = value, lam.copy(), 0
        else:
            stall += 1
            if stall >= 30:
                mu, stall = mu / 2.0, 0
        pos = gather_rows(inst.cand_ptr, top)
        hits = np.bincount(inst.pair_demand[pos], minlength=n_u)
        covered_value = float(w[hits > 0].sum())
        if covered_value > best_value + tol:
            best_value, best_sites = covered_value, np.sort(top)
        out_of_time = time.perf_counter() > deadline
        done = best_bound - best_value <= tol or mu < 1e-3 or out_of_time or it == max_iter
        if it % swap_every == 0 or done:
            # rounds, not seconds, bound the interchange (a busy machine gets the same sites);
            # p = 50 on the westlake network needs about 0.35 s for its 50 rounds
            improved = swap(inst, top, tol=tol, max_rounds=50, time_budget_s=2.0)
            improved_value = inst.saving(improved)
            if improved_value > best_value + tol:
                best_value, best_sites = improved_value, np.sort(improved)
        if done:
            break
        y = w > lam
        sub = hits - y.astype(np.float64)
        if not sub.any():
            mu = 0.0  # lambda is optimal: a continuation has nothing left to do
            break
        direction = sub + 0.7 * direction
        step = mu * max(value - best_value, tol) / dot(direction, direction)
        lam = np.clip(lam - step * direction, 0.0, w)
    return LagrangianResult(
        bound=max(best_bound, best_value),
        multipliers=best_lam,
        sites=best_sites,
        value=best_value,
        iterations=it,
        step_factor=mu,
    )


@dataclass(frozen=True)
class Fixing:
    """Sites every better solution must use (``fixed_in``) and those it may still use."""

    fixed_in: np.ndarray
    free: np.ndarray
    max_fixed_bound: float  # best value any solution breaking a fixing could reach


def fix_by_lagrangian(inst: SavingInstance, p: int, lam: np.ndarray, threshold: float) -> Fixing:
    """Lagrangian variable fixing: drop (or force) sites that cannot help beat ``threshold``.

    With ``L`` the Lagrangian bound at ``lam`` and ``g`` the candidate scores, a solution using
    a candidate j outside the p best is worth at most ``L - g_(p) + g_j``; one leaving out a
    candidate j among them at most ``L - g_j + g_(p+1)``.  When that is below ``threshold``
    (the incumbent, or the incumbent times 1 + the accepted MIP gap), x_j is fixed.
    """
    L, g, _top = _lagrangian_value(inst, lam, p)
    n_c = g.size
    order = np.argsort(-g, kind="stable")
    in_top = np.zeros(n_c, dtype=bool)
    in_top[order[:p]] = True
    g_p = float(g[order[p - 1]]) if 0 < p <= n_c else 0.0
    g_p1 = float(g[order[p]]) if p < n_c else 0.0
    ub_in = L - g_p + g  # forcing a candidate outside the top p in
    ub_out = L - g + g_p1  # forcing one of the top p out
    fix0 = ~in_top & (ub_in < threshold)
    fix1 = in_top & (ub_out < threshold)
    broken = np.concatenate([ub_in[fix0], ub_out[fix1]])
    return Fixing(
        fixed_in=np.flatnonzero(fix1),
        free=np.flatnonzero(~fix0 & ~fix1),
        max_fixed_bound=float(broken.max()) if broken.size else -np.inf,
    )


@dataclass(frozen=True)
class CoverResult:
    """Outcome of the set-covering Lagrangian heuristic (every row must be covered)."""

    sites: np.ndarray  # a cover: every row has a site
    lower: float  # Lagrangian lower bound on the number of sites (not rounded)
    reduced_cost: np.ndarray  # 1 - sum_i a_ij u_i at the best multipliers, per candidate
    iterations: int


def _cover_incidence(groups: UnitGroups, n_candidates: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    rows = sp.csr_matrix(
        (np.ones(groups.pair_group.size), (groups.pair_group, groups.pair_candidate)),
        shape=(groups.n_groups, n_candidates),
    )
    return rows, rows.T.tocsr()


def _complete_cover(
    rows: sp.csr_matrix, cols: sp.csr_matrix, chosen: np.ndarray, priority: np.ndarray
) -> np.ndarray:
    """Extend ``chosen`` (bool per candidate) to a cover, then drop redundant sites.

    Adds the site covering the most uncovered rows (ties: lower ``priority``) until all rows are
    covered; then removes sites whose rows are all covered twice, worst ``priority`` first.
    """
    x = chosen.copy()
    count = np.asarray(rows @ x.astype(np.float64))
    while True:
        open_rows = count == 0
        if not open_rows.any():
            break
        reach = np.asarray(cols @ open_rows.astype(np.float64))
        reach[x] = 0.0
        if reach.max() <= 0:
            break  # a row no candidate covers; the caller checks coverage
        score = reach - 1e-6 * priority  # most rows first, lower priority value on ties
        j = int(np.argmax(np.where(reach > 0, score, -np.inf)))
        x[j] = True
        count[cols.indices[cols.indptr[j] : cols.indptr[j + 1]]] += 1
    for j in np.flatnonzero(x)[np.argsort(-priority[np.flatnonzero(x)], kind="stable")]:
        r = cols.indices[cols.indptr[j] : cols.indptr[j + 1]]
        if np.all(count[r] >= 2):
            x[j] = False
            count[r] -= 1
    return np.flatnonzero(x)


def lagrangian_cover(
    groups: UnitGroups,
    n_candidates: int,
    *,
    max_iter: int = 400,
    heuristic_every: int = 25,
    time_budget_s: float = 3.0,
) -> CoverResult:
    """Lagrangian heuristic for unicost set covering [Beasley 1990].

    Relaxing "every row covered" with multipliers ``u_i >= 0`` gives ``L(u) = sum_i u_i +
    sum_j min(0, r_j)`` with reduced costs ``r_j = 1 - sum_i a_ij u_i``: a lower bound on the
    number of sites.  Every ``heuristic_every`` iterations the sites with negative reduced cost
    are completed to a cover (most uncovered rows first) and pruned of redundant sites.  The
    unit-count greedy plus pruning starts it; Polyak steps aim at the best cover found.
    Subgradient convergence is slow on large covering instances (a few units below the LP
    bound after hundreds of steps), so its bound is reported as it is and HiGHS does the rest.
    """
    deadline = time.perf_counter() + time_budget_s
    rows, cols = _cover_incidence(groups, n_candidates)
    n_rows = groups.n_groups
    col_size = np.diff(cols.indptr).astype(np.float64)
    best = _complete_cover(rows, cols, np.zeros(n_candidates, dtype=bool), -col_size)
    upper = float(best.size)
    if n_rows == 0:
        return CoverResult(best, 0.0, np.ones(n_candidates), 0)
    # Beasley's start: u_i = min over the row's candidates of 1 / (rows that candidate covers)
    inv = np.where(col_size > 0, 1.0 / np.maximum(col_size, 1.0), np.inf)
    u = np.full(n_rows, np.inf)
    np.minimum.at(u, groups.pair_group, inv[groups.pair_candidate])
    u[~np.isfinite(u)] = 0.0
    best_lower, best_r = -np.inf, np.ones(n_candidates)
    mu, stall, it = 2.0, 0, 0
    for it in range(1, max_iter + 1):
        r = 1.0 - np.asarray(cols @ u)
        x = r < 0
        lower = float(u.sum() + r[x].sum())
        if lower > best_lower + 1e-9:
            best_lower, best_r, stall = lower, r, 0
        else:
            stall += 1
            if stall >= 30:  # set covering needs more patience than MCLP
                mu, stall = mu / 2.0, 0
        proven = math.ceil(best_lower - 1e-6) >= upper
        done = proven or mu < 1e-3 or time.perf_counter() > deadline or it == max_iter
        if it % heuristic_every == 0 or done:
            cover = _complete_cover(rows, cols, x, r)
            if cover.size < upper:
                best, upper = cover, float(cover.size)
        if done or math.ceil(best_lower - 1e-6) >= upper:
            break
        sub = 1.0 - np.asarray(rows @ x.astype(np.float64))
        norm = dot(sub, sub)
        if norm == 0.0:
            break
        step = mu * max(upper - lower, 1e-6) / norm
        u = np.maximum(u + step * sub, 0.0)
    return CoverResult(best, best_lower, best_r, it)


def fix_cover(
    reduced_cost: np.ndarray, lower: float, upper: float
) -> tuple[np.ndarray, np.ndarray]:
    """Sites fixed open and sites still free for any cover with fewer than ``upper`` sites.

    Forcing a site with ``r_j > 0`` in raises the bound to ``lower + r_j``; forcing one with
    ``r_j < 0`` out raises it to ``lower - r_j``.  A bound above ``upper - 1`` means no
    strictly smaller cover does that.
    """
    limit = upper - 1.0 + 1e-6
    fix0 = (reduced_cost > 0) & (lower + reduced_cost > limit)
    fix1 = (reduced_cost < 0) & (lower - reduced_cost > limit)
    return np.flatnonzero(fix1), np.flatnonzero(~fix0 & ~fix1)
