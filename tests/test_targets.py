"""Planning targets on hand-made districts: status, shortfalls and the fewest sites by brute force."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coverage.targets import Target, TargetInputs, evaluate_targets, parse_targets, sites_needed
from layers.errors import InputError
from maps import i18n

STREETS = ["A", "B"]
COMMS = ["A1", "A2", "B1"]
PARENT = {"A1": "A", "A2": "A", "B1": "B"}


def district(pairs=((), (), ())) -> TargetInputs:
    # r0: A1 10 people at 5 min; r1: A1 10 at 20; r2: A2 20 at 8; r3: B1 40 at 30
    pr, pc, pm = (np.asarray(a) for a in pairs)
    return TargetInputs(
        minutes=np.array([5.0, 20.0, 8.0, 30.0]),
        weight=np.array([10.0, 10.0, 20.0, 40.0]),
        street=np.array(["A", "A", "A", "B"], dtype=object),
        community=np.array(["A1", "A1", "A2", "B1"], dtype=object),
        community_street=PARENT,
        facility_street=np.array(["A", "A"], dtype=object),
        facility_community=np.array(["A1", "A2"], dtype=object),
        headline_min=15.0,
        pair_resident=pr.astype(np.int64),
        pair_candidate=pc.astype(np.int64),
        pair_minutes=pm.astype(float),
        n_candidates=int(pc.max()) + 1 if len(pc) else 0,
    )


def tgt(label, scope, measure, threshold, minutes=None):
    return Target(label, "canteen", scope, measure, threshold, minutes)


def test_status_and_shortfalls_by_hand():
    targets = [
        tgt("全区覆盖80%", "district", "coverage_rate", 0.8),
        tgt("每个街道覆盖一半", "street", "coverage_rate", 0.5),
        tgt("所有社区15分钟", "district", "communities_all_within", 1.0),
        tgt("每街道至少一处", "street", "facility_count", 1),
        tgt("全区至少三处", "district", "facility_count", 3),
    ]
    table, units = evaluate_targets(
        targets, {"canteen": district()}, streets=STREETS, communities=COMMS
    )
    t = table.set_index("label")
    # covered within 15: r0 + r2 = 30 of 80 -> 0.375; need ceil(64 - 30) = 34 more people
    assert t.loc["全区覆盖80%", "value"] == pytest.approx(0.375)
    assert t.loc["全区覆盖80%", "status"] == "not met"
    assert t.loc["全区覆盖80%", "shortfall_population"] == 34
    # A: 30/40 = 0.75 met; B: 0/40 not met, 20 people short; value = worst unit = 0
    assert t.loc["每个街道覆盖一半", "value"] == 0.0
    assert (t.loc["每个街道覆盖一半", "units_met"], t.loc["每个街道覆盖一半", "units_total"]) == (
        1,
        2,
    )
    assert t.loc["每个街道覆盖一半", "shortfall_population"] == 20
    # A1 misses r1, B1 misses r3: 1 of 3 communities; 10 + 40 people outside
    assert t.loc["所有社区15分钟", "value"] == pytest.approx(1 / 3)
    assert t.loc["所有社区15分钟", "shortfall_population"] == 50
    # counts: A has 2, B has 0 -> one site short; district has 2 of 3
    assert t.loc["每街道至少一处", "shortfall_sites"] == 1
    assert t.loc["全区至少三处", "value"] == 2 and t.loc["全区至少三处", "shortfall_sites"] == 1
    # worst units first
    u = units[units.label == "每个街道覆盖一半"]
    assert list(u["unit"]) == ["B", "A"] and list(u["met"]) == [False, True]


def test_fewest_sites_meet_every_target_at_once():
    # c0 reaches r1 at 10 min, c1 reaches r3 at 12, c2 reaches r1 and r3 at 14
    d = district(pairs=([1, 3, 1, 3], [0, 1, 2, 2], [10.0, 12.0, 14.0, 14.0]))
    targets = [
        tgt("所有社区15分钟", "district", "communities_all_within", 1.0),
        tgt("每个街道覆盖一半", "street", "coverage_rate", 0.5),
    ]
    w = sites_needed(targets, d, streets=STREETS, communities=COMMS)
    assert w.feasible and w.optimal and list(w.sites) == [2]
    # at 12 minutes c2 is too far: two sites are needed
    w12 = sites_needed(
        [tgt("12分钟全覆盖", "district", "coverage_rate", 1.0, minutes=12)],
        d,
        streets=STREETS,
        communities=COMMS,
    )
    assert sorted(w12.sites) == [0, 1]


def test_unreachable_target_is_explained():
    d = district(pairs=([1], [0], [10.0]))  # nothing reaches r3 (B1)
    w = sites_needed(
        [
            tgt("所有社区15分钟", "district", "communities_all_within", 1.0),
            tgt("B街道全覆盖", "street", "coverage_rate", 1.0),
        ],
        d,
        streets=STREETS,
        communities=COMMS,
    )
    assert not w.feasible
    by_code = {r.code: r for r in w.unreachable}  # coded reasons, numbers not sentences
    comm = by_code["communities_out_of_reach"]
    assert (comm.target, comm.unit, comm.blocked, comm.minutes) == (0, "", ("B1",), 15.0)
    assert comm.possible == comm.total - 1 == len(COMMS) - 1
    cov = by_code["coverage_out_of_reach"]
    assert (cov.target, cov.unit, cov.people_out_of_reach) == (1, "B", 40.0)
    assert 0 <= cov.best_share < 1
    assert w.reasons_for(1) == (cov,) and w.reason_code(0) == "communities_out_of_reach"
    # maps.i18n words them, in Chinese as the report always said it, and in English
    zh = i18n.target_reason(w.reason_json(1), "B街道全覆盖", "zh")
    assert zh.startswith("「B街道全覆盖」B：即使启用全部候选点，15分钟内最多覆盖") and "40人" in zh
    en = i18n.target_reason(w.reason_json(0), "所有社区15分钟", "en")
    assert "“所有社区15分钟”, the district" in en and en.endswith("every resident of B1")


def test_reasons_found_by_target_index_not_label():
    """Two targets with one label: only the unreachable one gets the reason (no label match)."""
    d = district(pairs=([1], [0], [10.0]))
    same = "同名目标"
    w = sites_needed(
        [
            tgt(same, "street", "coverage_rate", 0.0),  # met by anything
            tgt(same, "street", "coverage_rate", 1.0),  # B cannot be reached
        ],
        d,
        streets=STREETS,
        communities=COMMS,
        target_ids=[7, 9],
    )
    assert w.reasons_for(7) == () and w.reason_json(7) == "" and w.reason_code(7) == ""
    assert [r.target for r in w.unreachable] == [9] and w.reason_code(9) == "coverage_out_of_reach"
    with pytest.raises(ValueError, match="target_ids"):
        sites_needed(
            [tgt(same, "street", "coverage_rate", 1.0)],
            d,
            streets=STREETS,
            communities=COMMS,
            target_ids=[1, 2],
        )


def test_demo_reason_reads_as_before():
    """The demo's coded reason, worded in Chinese, is the sentence coverage/ used to build."""
    coded = json.dumps(
        [
            {
                "code": "communities_out_of_reach",
                "unit": "",
                "minutes": 15.0,
                "possible": 13,
                "total": 16,
                "blocked": ["示例梅园社区（合成）", "示例锦绣社区（合成）", "示例云栖社区（合成）"],
            }
        ],
        ensure_ascii=False,
    )
    before = (  # tests/data/demo_summary_before_stages.json, as written before the change
        "「步行15分钟助餐服务网覆盖所有社区」全区：仅13/16个社区可全部在15分钟内覆盖；"
        "没有候选点能到达以下社区的全部居民：示例梅园社区（合成）、示例锦绣社区（合成）、示例云栖社区（合成）"
    )
    assert i18n.target_reason(coded, "步行15分钟助餐服务网覆盖所有社区", "zh") == before
    assert i18n.target_reason("", "x", "zh") == "" and i18n.target_reason(None, "x", "en") == ""
    assert i18n.target_reason("written by hand", "x", "en") == "written by hand"


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    share=st.sampled_from([0.5, 0.8, 1.0]),
    scope=st.sampled_from(["district", "street"]),
    measure=st.sampled_from(["coverage_rate", "communities_all_within"]),
)
def test_fewest_sites_equal_brute_force(seed, share, scope, measure):
    rng = np.random.default_rng(seed)
    n, k = 8, 5
    street = rng.choice(STREETS, n).astype(object)
    comm = np.array([f"{s}{rng.integers(1, 3)}" for s in street], dtype=object)
    comms = sorted(set(comm))
    d0 = TargetInputs(
        minutes=rng.choice([5.0, 20.0, 40.0], n),
        weight=rng.integers(1, 50, n).astype(float),
        street=street,
        community=comm,
        community_street={c: c[0] for c in comms},
        facility_street=np.array([], dtype=object),
        facility_community=np.array([], dtype=object),
        headline_min=15.0,
    )
    mask = rng.random((n, k)) < 0.35
    pr, pc = np.nonzero(mask)
    pm = rng.uniform(1, 15, len(pr))
    d = TargetInputs(
        **{
            **d0.__dict__,
            "pair_resident": pr,
            "pair_candidate": pc,
            "pair_minutes": pm,
            "n_candidates": k,
        }
    )
    target = Target("t", "canteen", scope, measure, share)
    w = sites_needed([target], d, streets=STREETS, communities=comms)

    def met_with(sites):
        minutes = d.minutes.copy()
        for j in sites:
            sel = pc == j
            minutes[pr[sel]] = np.minimum(minutes[pr[sel]], pm[sel])
        dd = TargetInputs(**{**d.__dict__, "minutes": minutes})
        table, _ = evaluate_targets([target], {"canteen": dd}, streets=STREETS, communities=comms)
        return table["status"].iloc[0] == "met"

    best = next(
        (
            r
            for r in range(k + 1)
            for combo in itertools.combinations(range(k), r)
            if met_with(combo)
        ),
        None,
    )
    if best is None:
        assert not w.feasible and w.unreachable
    else:
        assert w.feasible and len(w.sites) == best and met_with(w.sites)


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (
            {
                "label": "x",
                "layer": "bakery",
                "scope": "district",
                "measure": "coverage_rate",
                "threshold": 1,
            },
            "unknown layer 'bakery'",
        ),
        (
            {
                "label": "x",
                "layer": "canteen",
                "scope": "city",
                "measure": "coverage_rate",
                "threshold": 1,
            },
            "unknown scope 'city'",
        ),
        (
            {
                "label": "x",
                "layer": "canteen",
                "scope": "street",
                "measure": "count",
                "threshold": 1,
            },
            "facility_count, coverage_rate",
        ),
        (
            {
                "label": "x",
                "layer": "canteen",
                "scope": "street",
                "measure": "coverage_rate",
                "threshold": 90,
            },
            "share between 0 and 1",
        ),
        (
            {"label": "x", "layer": "canteen", "scope": "street", "measure": "coverage_rate"},
            "'threshold' is missing",
        ),
        (
            {
                "label": "x",
                "layer": "canteen",
                "scope": "street",
                "measure": "coverage_rate",
                "threshold": 1,
                "minute": 15,
            },
            "unknown key 'minute'",
        ),
    ],
)
def test_unknown_words_name_the_target(entry, words):
    with pytest.raises(InputError, match=words) as err:
        parse_targets([entry], layers=["canteen"], file="plan.toml")
    assert "target 1 ('x')" in str(err.value) and "plan.toml" in str(err.value)


def test_unknown_target_key_names_the_closest_key():
    entry = {
        "label": "助餐全覆盖",
        "layer": "canteen",
        "scope": "street",
        "measure": "coverage_rate",
        "threshold": 1.0,
        "minute": 15,
    }
    with pytest.raises(InputError) as err:
        parse_targets([entry], layers=["canteen"], file="targets.toml")
    assert "target 1 ('助餐全覆盖'): unknown key 'minute'" in str(err.value)
    assert "did you mean 'minutes'?" in err.value.fix and "targets.toml" in str(err.value)
