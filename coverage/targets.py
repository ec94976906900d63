"""Planning targets: check a district's written service targets and what it takes to meet them.

District leaders are measured against sentences such as "步行15分钟助餐服务网覆盖所有社区"
or "每个街道至少一个康养联合体".  A target here is one such sentence in a small vocabulary:

``layer``
    Facility kind the target is about.
``scope``
    ``district`` (one value), ``street`` (every 街道 must meet it) or ``community`` (every 社区).
``measure``
    ``facility_count`` (facilities of the layer inside the unit, >= threshold);
    ``coverage_rate`` (share of the layer's target group within ``minutes``, >= threshold);
    ``communities_all_within`` (share of the unit's 社区 whose target residents are *all* within
    ``minutes``, >= threshold).
``minutes``
    Walking minutes for the coverage measures (default: the layer's headline).
``threshold``
    The number to reach (a count, or a share 0-1).
``label``
    The sentence itself, in Chinese, as the report shows it.

Evaluation gives, per target and per unit, the value, met / not met, the shortfall in people and
in sites.  "What would it take" solves one set-covering MILP per layer with *every* coverage
target of that layer as a constraint (HiGHS through ``scipy.optimize.milp``): the fewest new
sites from the candidates meeting them all at once.  What no candidate can reach comes back as an
:class:`Unreachable` reason (a code and its numbers, never a bare "infeasible"); the report and
``summary.json`` word it (:mod:`maps.i18n`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from coverage.metrics import is_covered
from layers.errors import InputError
from layers.tomlfile import check_keys

log = logging.getLogger(__name__)

SCOPES = ("district", "street", "community")
MEASURES = ("facility_count", "coverage_rate", "communities_all_within")
_KEYS = ("label", "layer", "scope", "measure", "minutes", "threshold")
_TOL = 1e-9  # shares and people (coverage itself is coverage.metrics.is_covered)


@dataclass(frozen=True)
class Target:
    """One written target, checked."""

    label: str
    layer: str
    scope: str
    measure: str
    threshold: float
    minutes: float | None = None


def parse_targets(
    entries: Sequence[Mapping[str, Any]], *, layers: Sequence[str], file: str = "plan"
) -> tuple[Target, ...]:
    """Check ``[[targets]]`` entries; unknown words name the target and the allowed values."""
    out = []
    for i, e in enumerate(entries, start=1):
        name = str(e.get("label", f"target {i}"))
        where = f"target {i} ('{name}')"
        check_keys(e, _KEYS, where=where, file=file)
        for key in ("layer", "scope", "measure", "threshold"):
            if key not in e:
                msg = f"{where}: '{key}' is missing"
                raise InputError(msg, file=file, fix=f"add {key} = ... to the target")
        layer, scope, measure = str(e["layer"]), str(e["scope"]), str(e["measure"])
        for value, allowed, key in (
            (layer, layers, "layer"),
            (scope, SCOPES, "scope"),
            (measure, MEASURES, "measure"),
        ):
            if value not in allowed:
                msg = f"{where}: unknown {key} '{value}'"
                raise InputError(msg, file=file, fix=f"use one of {', '.join(allowed)}")
        try:
            threshold = float(e["threshold"])
            minutes = None if e.get("minutes") is None else float(e["minutes"])
        except (TypeError, ValueError):
            msg = f"{where}: threshold and minutes must be numbers"
            raise InputError(msg, file=file, fix="write e.g. threshold = 1.0") from None
        if measure != "facility_count" and not 0 <= threshold <= 1:
            msg = f"{where}: a {measure} threshold is a share between 0 and 1, got {threshold}"
            raise InputError(msg, file=file, fix="write 0.9 for 90%")
        if measure == "facility_count" and (threshold < 0 or not float(threshold).is_integer()):
            msg = f"{where}: a facility count must be a whole number, got {threshold}"
            raise InputError(msg, file=file, fix="write e.g. threshold = 1")
        if measure == "communities_all_within" and scope == "community":
            msg = f"{where}: communities_all_within is measured over a district or a 街道"
            raise InputError(msg, file=file, fix='use scope = "district" or "street"')
        if minutes is not None and minutes <= 0:
            msg = f"{where}: minutes must be positive"
            raise InputError(msg, file=file, fix="write e.g. minutes = 15")
        out.append(Target(name, layer, scope, measure, threshold, minutes))
    return tuple(out)


@dataclass(frozen=True)
class TargetInputs:
    """What evaluation needs about one layer, index-aligned with the residents."""

    minutes: np.ndarray  # to the nearest existing facility
    weight: np.ndarray  # target-group population
    street: np.ndarray  # 街道 name per resident ("" outside)
    community: np.ndarray  # 社区 name per resident ("" outside)
    community_street: Mapping[str, str]  # 社区 -> its 街道
    facility_street: np.ndarray  # 街道 of each existing facility
    facility_community: np.ndarray
    headline_min: float
    # reachable (resident, candidate, minutes) pairs for "what would it take"; may be empty
    pair_resident: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    pair_candidate: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    pair_minutes: np.ndarray = field(default_factory=lambda: np.array([]))
    n_candidates: int = 0
    candidate_street: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    candidate_community: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))


def _units(
    t: Target, d: TargetInputs, streets: Sequence[str], communities: Sequence[str]
) -> list[str]:
    if t.scope == "district":
        return [""]
    return list(streets) if t.scope == "street" else list(communities)


def _member(t: Target, d: TargetInputs, unit: str) -> np.ndarray:
    if t.scope == "district":
        return np.ones(len(d.weight), dtype=bool)
    labels = d.street if t.scope == "street" else d.community
    return labels == unit


def evaluate_targets(
    targets: Sequence[Target],
    inputs: Mapping[str, TargetInputs],
    *,
    streets: Sequence[str],
    communities: Sequence[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate every target per scope unit.

    Returns
    -------
    (targets table, units table)
        ``targets``: one row per target (``label, layer, scope, measure, minutes, threshold,
        status, value, units_met, units_total, shortfall_population, shortfall_sites,
        sites_needed, reason_code, reason``), where ``value`` is the district value or the
        worst unit's (``reason``: filled by the caller from :meth:`WhatItTakes.reason_json`);
        ``units``: one row per target and unit (``target, label, unit, value, met,
        shortfall_population, shortfall_sites``), worst units first.
    """
    rows, unit_rows = [], []
    for ti, t in enumerate(targets):
        d = inputs[t.layer]
        minutes = t.minutes if t.minutes is not None else d.headline_min
        per = []
        for unit in _units(t, d, streets, communities):
            m = _member(t, d, unit)
            short_pop = 0.0
            short_sites = 0
            if t.measure == "facility_count":
                if t.scope == "district":
                    value = float(len(d.facility_street))
                else:
                    labels = d.facility_street if t.scope == "street" else d.facility_community
                    value = float((labels == unit).sum())
                met = value >= t.threshold
                short_sites = int(max(0.0, t.threshold - value))
            elif t.measure == "coverage_rate":
                total = float(d.weight[m].sum())
                covered = float(d.weight[m & is_covered(d.minutes, minutes)].sum())
                value = covered / total if total > 0 else math.nan
                met = total == 0 or value >= t.threshold - _TOL
                short_pop = max(0.0, math.ceil(t.threshold * total - covered - _TOL))
            else:  # communities_all_within
                comms = [
                    c
                    for c in communities
                    if t.scope == "district" or d.community_street.get(c) == unit
                ]
                ok, gaps = 0, 0.0
                counted = 0
                for c in comms:
                    cm = d.community == c
                    if d.weight[cm].sum() <= 0:
                        continue
                    counted += 1
                    miss = d.weight[cm & ~is_covered(d.minutes, minutes)].sum()
                    ok += miss <= 0
                    gaps += float(miss)
                value = ok / counted if counted else math.nan
                met = counted == 0 or value >= t.threshold - _TOL
                short_pop = gaps if not met else 0.0
            per.append((unit, value, bool(met), short_pop, short_sites))
        per.sort(
            key=lambda r: (
                r[2],
                -r[3] if not math.isnan(r[3]) else 0,
                r[1] if not math.isnan(r[1]) else 1.0,
            )
        )
        for unit, value, met, sp_, ss in per:
            unit_rows.append(
                {
                    "target": ti,
                    "label": t.label,
                    "layer": t.layer,
                    "scope": t.scope,
                    "unit": unit,
                    "value": value,
                    "met": met,
                    "shortfall_population": sp_,
                    "shortfall_sites": ss,
                }
            )
        values = [r[1] for r in per if not math.isnan(r[1])]
        worst = (min(values) if values else math.nan) if t.scope != "district" else per[0][1]
        rows.append(
            {
                "label": t.label,
                "layer": t.layer,
                "scope": t.scope,
                "measure": t.measure,
                "minutes": minutes if t.measure != "facility_count" else math.nan,
                "threshold": t.threshold,
                "status": "met" if all(r[2] for r in per) else "not met",
                "value": worst,
                "units_met": sum(r[2] for r in per),
                "units_total": len(per),
                "shortfall_population": float(sum(r[3] for r in per)),
                "shortfall_sites": int(sum(r[4] for r in per)),
                "sites_needed": np.nan,
                "reason_code": "",
                "reason": "",
            }
        )
    return pd.DataFrame(rows), pd.DataFrame(unit_rows)


#: Why a target cannot be met by any set of candidates (:attr:`Unreachable.code`).
REASON_CODES: Final = ("coverage_out_of_reach", "communities_out_of_reach")
#: Communities named in a ``communities_out_of_reach`` reason (the rest are counted).
BLOCKED_NAMED: Final = 5


@dataclass(frozen=True)
class Unreachable:
    """Why one target cannot be met in one unit, as numbers: :mod:`maps.i18n` words it.

    Kept as data, not a sentence, so that the report (Chinese or English), ``summary.json`` and
    the exports word the same facts their own way, and so that a target is found by its index
    rather than by its label inside a sentence.

    ``code`` is ``"coverage_out_of_reach"`` (a coverage rate: even every candidate open covers
    only ``best_share`` of the unit's target group; ``people_out_of_reach`` are within reach of
    no candidate) or ``"communities_out_of_reach"`` (a share of 社区 all within the minutes: only
    ``possible`` of ``total`` 社区 can be; ``blocked`` names the first few that cannot).
    """

    target: int  # index of the target in the sequence given to :func:`sites_needed`
    unit: str  # the 街道 or 社区; "" for the whole district
    code: str
    minutes: float
    best_share: float = math.nan
    people_out_of_reach: float = math.nan
    possible: int = 0
    total: int = 0
    blocked: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields (NaN left out): the ``reason`` text of the targets table."""
        out: dict[str, Any] = {"code": self.code, "unit": self.unit, "minutes": self.minutes}
        if self.code == "coverage_out_of_reach":
            out |= {"best_share": self.best_share, "people_out_of_reach": self.people_out_of_reach}
        else:
            out |= {"possible": self.possible, "total": self.total, "blocked": list(self.blocked)}
        return out


@dataclass(frozen=True)
class WhatItTakes:
    """The fewest new sites of one layer meeting all its coverage targets at once."""

    layer: str
    sites: np.ndarray  # candidate indices
    feasible: bool
    optimal: bool
    status: str
    unreachable: tuple[Unreachable, ...]  # one per target and unit no candidate set can meet

    def reasons_for(self, target: int) -> tuple[Unreachable, ...]:
        """The reasons target number ``target`` cannot be met (empty when it can)."""
        return tuple(r for r in self.unreachable if r.target == target)

    def reason_code(self, target: int) -> str:
        """The codes of :meth:`reasons_for`, each once, joined by ``;`` ("" when none)."""
        return ";".join(dict.fromkeys(r.code for r in self.reasons_for(target)))

    def reason_json(self, target: int) -> str:
        """The reasons of ``target`` as JSON text (a list of :meth:`Unreachable.as_dict`).

        Machine-readable text, so that the targets table stays a plain table in every export
        format; "" when the target can be met.
        """
        reasons = self.reasons_for(target)
        if not reasons:
            return ""
        return json.dumps([r.as_dict() for r in reasons], ensure_ascii=False)


def sites_needed(
    targets: Sequence[Target],
    d: TargetInputs,
    *,
    streets: Sequence[str],
    communities: Sequence[str],
    time_limit_s: float = 30.0,
    target_ids: Sequence[int] | None = None,
) -> WhatItTakes:
    """Set covering with per-area constraints for the coverage targets of one layer.

    Variables: ``x_j`` (open candidate j, binary), ``y_i`` (resident i covered, continuous 0..1,
    never above the number of opened candidates reaching it: the usual compact form, exact
    because ``y`` only needs to reach 1 when some covering site is open), and ``z_c`` (社区 c
    fully covered, binary) for ``communities_all_within``.  Minimise the number of sites.
    Residents already covered by existing facilities have ``y_i = 1`` fixed.

    ``target_ids`` numbers ``targets`` for the :class:`Unreachable` reasons (default: their
    positions), so a caller passing one layer's targets gets back its own target indices.
    """
    ids = list(range(len(targets))) if target_ids is None else list(target_ids)
    if len(ids) != len(targets):
        msg = f"{len(ids)} target_ids for {len(targets)} targets"
        raise ValueError(msg)
    layer = targets[0].layer if targets else ""
    cov = [t for t in targets if t.measure != "facility_count"]
    n = len(d.weight)
    if not cov:
        return WhatItTakes(
            layer, np.array([], dtype=np.int64), True, True, "no coverage target", ()
        )
    minutes_list = sorted({t.minutes if t.minutes is not None else d.headline_min for t in cov})
    # one block of y per distinct minutes value
    nc = d.n_candidates
    blocks = {m: nc + k * n for k, m in enumerate(minutes_list)}
    comm_ids = {c: i for i, c in enumerate(communities)}
    z0 = nc + len(minutes_list) * n
    nvar = z0 + len(communities)
    A_rows: list[sp.csr_matrix] = []
    lo: list[float] = []
    hi: list[float] = []
    lb = np.zeros(nvar)
    ub = np.ones(nvar)
    integrality = np.zeros(nvar)
    integrality[:nc] = 1
    integrality[z0:] = 1
    unreachable: list[Unreachable] = []
    for m, off in blocks.items():
        before = is_covered(d.minutes, m)
        lb[off : off + n][before] = 1.0  # existing facilities already cover them
        ok = is_covered(d.pair_minutes, m)
        pr, pc = d.pair_resident[ok], d.pair_candidate[ok]
        # y_i - sum_j a_ij x_j <= 0 for residents not yet covered
        need = np.flatnonzero(~before)
        reach = np.zeros(n, dtype=bool)
        reach[pr] = True
        ub[off : off + n][~before & ~reach] = 0.0  # nobody can cover them
        of_need = np.isin(pr, need)
        rows = np.concatenate([np.arange(len(need)), np.searchsorted(need, pr[of_need])])
        cols = np.concatenate([off + need, pc[of_need]])
        vals = np.concatenate([np.ones(len(need)), -np.ones(int(of_need.sum()))])
        A_rows.append(sp.csr_matrix((vals, (rows, cols)), shape=(len(need), nvar)))
        lo += [-np.inf] * len(need)
        hi += [0.0] * len(need)
    for ti, t in zip(ids, targets, strict=True):
        if t.measure == "facility_count":
            continue
        m = t.minutes if t.minutes is not None else d.headline_min
        off = blocks[m]
        max_y = ub[off : off + n]
        for unit in _units(t, d, streets, communities):
            mem = _member(t, d, unit)
            if t.measure == "coverage_rate":
                total = float(d.weight[mem].sum())
                need_pop = t.threshold * total - _TOL * max(total, 1.0)
                best = float((d.weight * max_y)[mem].sum())
                if total > 0 and best < need_pop:
                    unreachable.append(
                        Unreachable(
                            ti,
                            unit,
                            "coverage_out_of_reach",
                            float(m),
                            best_share=best / total,
                            people_out_of_reach=total - best,
                        )
                    )
                    continue
                row = np.zeros(nvar)
                row[off : off + n][mem] = d.weight[mem]
                A_rows.append(sp.csr_matrix(row))
                lo.append(need_pop)
                hi.append(np.inf)
            else:  # communities_all_within: z_c <= coverage of c; sum z_c >= share * count
                comms = [
                    c
                    for c in communities
                    if (t.scope == "district" or d.community_street.get(c) == unit)
                    and d.weight[d.community == c].sum() > 0
                ]
                if not comms:
                    continue
                possible = []
                for c in comms:
                    cm = d.community == c
                    wc = d.weight[cm]
                    row = np.zeros(nvar)
                    row[off : off + n][cm] = wc
                    row[z0 + comm_ids[c]] = -wc.sum()
                    A_rows.append(sp.csr_matrix(row))
                    lo.append(-_TOL * max(wc.sum(), 1.0))
                    hi.append(np.inf)
                    if (d.weight * max_y)[cm].sum() >= wc.sum() - _TOL:
                        possible.append(c)
                k_need = math.ceil(t.threshold * len(comms) - _TOL)
                if len(possible) < k_need:
                    blocked = [c for c in comms if c not in possible]
                    unreachable.append(
                        Unreachable(
                            ti,
                            unit,
                            "communities_out_of_reach",
                            float(m),
                            possible=len(possible),
                            total=len(comms),
                            blocked=tuple(blocked[:BLOCKED_NAMED]),
                        )
                    )
                    continue
                row = np.zeros(nvar)
                for c in comms:
                    row[z0 + comm_ids[c]] = 1.0
                A_rows.append(sp.csr_matrix(row))
                lo.append(float(k_need))
                hi.append(np.inf)
    c_obj = np.zeros(nvar)
    c_obj[:nc] = 1.0
    c_obj[nc:z0] = -1e-7  # among equally few sites, prefer covering more people
    A = sp.vstack(A_rows).tocsr() if A_rows else sp.csr_matrix((0, nvar))
    res = milp(
        c_obj,
        constraints=LinearConstraint(A, lo, hi) if A.shape[0] else None,
        integrality=integrality,
        bounds=Bounds(lb, ub),
        options={"time_limit": time_limit_s, "mip_rel_gap": 0.0, "disp": False},
    )
    if res.x is None:
        return WhatItTakes(
            layer,
            np.array([], dtype=np.int64),
            False,
            False,
            f"HiGHS: {res.message}",
            tuple(unreachable),
        )
    chosen = np.flatnonzero(res.x[:nc] > 0.5)
    feasible = not unreachable
    status = (
        "all coverage targets met with the sites"
        if feasible
        else "the reachable part of the targets met; the rest cannot be met by any candidate"
    )
    return WhatItTakes(layer, chosen, feasible, bool(res.status == 0), status, tuple(unreachable))
