"""What-if edits equal a full batch analysis of the edited facility set, edit after edit."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coverage.analysis import StudyInputs, analyse
from coverage.whatif import Study
from geo.network import network_from_graph
from layers.spec import LayerSpec

from .test_geo_routing import UTM, X0, Y0, random_network

CANTEEN = LayerSpec("canteen", "食堂", "Canteen", "elderly", 3.6, (5.0, 10.0, 15.0), 15.0)
CENTER = LayerSpec(
    "neighborhood_center", "邻里中心", "Center", "population", 4.5, (5.0, 10.0), 10.0
)


def _lonlat(net, xy):
    lon, lat = net.to_wgs84.transform(X0 + xy[:, 0], Y0 + xy[:, 1])
    return np.column_stack([lon, lat])


def _study(seed: int, n_fac: int):
    net = network_from_graph(random_network(seed, connected=seed % 3 != 0), crs=UTM,
                             largest_component=False)  # fmt: skip
    rng = np.random.default_rng(seed)
    res_ll = _lonlat(net, rng.uniform(-80, 1080, (40, 2)))
    residents = gpd.GeoDataFrame(
        {
            "resident_id": [f"r{i}" for i in range(40)],
            "name": [f"r{i}" for i in range(40)],
            "population": rng.integers(1, 50, 40),
            "elderly": rng.integers(0, 20, 40),
            "youth": rng.integers(0, 20, 40),
        },
        geometry=shapely.points(res_ll),
        crs=4326,
    )
    facilities = {}
    for kind, n in (("canteen", n_fac), ("neighborhood_center", 2)):
        ll = _lonlat(net, rng.uniform(0, 1000, (n, 2)))
        facilities[kind] = gpd.GeoDataFrame(
            {
                "facility_id": [f"{kind}-{i}" for i in range(n)],
                "kind": [kind] * n,
                "name": [f"{kind} {i}" for i in range(n)],
                "capacity": [np.nan] * n,
            },
            geometry=shapely.points(ll) if n else gpd.GeoSeries([], crs=4326),
            crs=4326,
        )
    west = shapely.box(*_lonlat(net, np.array([[-100, -100]]))[0],
                       *_lonlat(net, np.array([[500, 1100]]))[0])  # fmt: skip
    east = shapely.box(*_lonlat(net, np.array([[500, -100]]))[0],
                       *_lonlat(net, np.array([[1100, 1100]]))[0])  # fmt: skip
    streets = gpd.GeoDataFrame({"area": ["西", "东"]}, geometry=[west, east], crs=4326)
    inputs = StudyInputs(
        residents,
        facilities,
        {"canteen": CANTEEN, "neighborhood_center": CENTER},
        streets=streets,
    )
    return net, inputs


def _check_equal(study: Study) -> None:
    batch = analyse(study.net, study.edited_inputs(), title="t")
    for kind, layer in study.layers.items():
        got = layer.minutes
        want = batch.residents[f"minutes_{kind}"].to_numpy()
        assert np.array_equal(np.isinf(got), np.isinf(want))
        np.testing.assert_allclose(got[np.isfinite(got)], want[np.isfinite(want)], rtol=1e-12)
        m = batch.metrics[batch.metrics["kind"] == kind].reset_index(drop=True)
        pd.testing.assert_frame_equal(study.metrics(kind), m, rtol=1e-12)


edit = st.one_of(
    st.tuples(st.just("add"), st.floats(-50, 1050), st.floats(-50, 1050)),
    st.tuples(st.just("remove"), st.integers(0, 20)),
    st.tuples(st.just("move"), st.integers(0, 20), st.floats(-50, 1050), st.floats(-50, 1050)),
    st.tuples(st.just("speed"), st.sampled_from([2.5, 3.6, 5.0])),
    st.tuples(st.just("minutes"), st.sampled_from([(5.0,), (3.0, 20.0), (10.0, 15.0, 30.0)])),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 5000), n_fac=st.integers(0, 3), edits=st.lists(edit, max_size=5))
def test_random_edit_sequences_equal_batch_runs(seed, n_fac, edits):
    net, inputs = _study(seed, n_fac)
    study = Study.route(net, inputs)
    _check_equal(study)
    for op in edits:
        kind = "canteen"
        ids = list(study.layers[kind].ids)
        if op[0] == "add":
            ll = _lonlat(net, np.array([[op[1], op[2]]]))[0]
            study, fid = study.add_facility(kind, lon=ll[0], lat=ll[1], name="新站")
            assert fid in set(study.layers[kind].ids)
        elif op[0] in ("remove", "move") and ids:
            fid = ids[op[1] % len(ids)]
            if op[0] == "remove":
                study = study.remove_facility(kind, fid)
            else:
                ll = _lonlat(net, np.array([[op[2], op[3]]]))[0]
                study = study.move_facility(kind, fid, lon=ll[0], lat=ll[1])
        elif op[0] == "speed":
            study = study.with_speed(kind, op[1])
        elif op[0] == "minutes":
            study = study.with_thresholds(kind, op[1])
        _check_equal(study)


def test_edits_leave_the_old_study_and_other_layers_alone():
    net, inputs = _study(7, 2)
    s0 = Study.route(net, inputs)
    before = s0.layers["canteen"].minutes.copy()
    ll = _lonlat(net, np.array([[500.0, 500.0]]))[0]
    s1, fid = s0.add_facility("canteen", lon=ll[0], lat=ll[1])
    assert np.array_equal(s0.layers["canteen"].minutes, before)  # undo is the old object
    assert s1.layers["neighborhood_center"] is s0.layers["neighborhood_center"]
    assert (s1.layers["canteen"].minutes <= before).all()  # a new site never lengthens a walk
    s2 = s1.remove_facility("canteen", fid)
    np.testing.assert_array_equal(s2.layers["canteen"].minutes, before)
    with pytest.raises(KeyError, match="no facility"):
        s2.remove_facility("canteen", fid)
    with pytest.raises(ValueError, match="already exists"):
        s1.add_facility("canteen", lon=ll[0], lat=ll[1], facility_id=fid)


def test_numbers_only_result_has_every_summary_number(tmp_path):
    """The studio's fast path (no outlines, loads or polygons) gives the batch summary.json."""
    from coverage.summary import summary_dict
    from coverage.whatif import LayerCache

    net, inputs = _study(11, 2)
    study = Study.route(net, inputs)
    ll = _lonlat(net, np.array([[400.0, 600.0]]))[0]
    study, _ = study.add_facility("canteen", lon=ll[0], lat=ll[1])
    cache = LayerCache()
    fast = summary_dict(study.result(title="t", cache=cache, drawing=False))
    full = summary_dict(study.result(title="t", cache=cache))
    batch = summary_dict(analyse(net, study.edited_inputs(), title="t"))
    for doc in (fast, full, batch):
        doc.pop("timings_s")
    assert fast == full == batch
