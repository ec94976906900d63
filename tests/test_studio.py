"""The studio's JSON API through Starlette's TestClient (no port): every edit's numbers equal a
batch analysis of the edited facility set, bad requests are 4xx and change nothing, scenarios
are files a GIS reads, exports are ``run``'s outputs."""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import replace

import geopandas as gpd
import pytest

import app as cli
from coverage.analysis import analyse
from coverage.summary import summary_dict

pytest.importorskip("starlette")
with warnings.catch_warnings():  # Starlette 1.x prefers httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from maps.studio.server import create_app


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    folder = tmp_path_factory.mktemp("studio")
    args = cli._parser().parse_args(["serve", "--demo", "--study", str(folder)])
    guard, url, token = cli.studio_app(args, cli.Progress(False))
    assert token is None and url == "http://127.0.0.1:8765/"
    return guard, folder


@pytest.fixture(scope="module")
def client(studio):
    return TestClient(studio[0])


def batch_summary(session) -> dict:
    """summary.json of a batch run of the session's current facility set (timings aside)."""
    study = session.study
    result = analyse(
        study.net,
        study.edited_inputs(),
        title=session.title,
        options=replace(study.options, suggest={}),
        synthetic=session.synthetic,
        sources=session.sources,
    )
    doc = summary_dict(result)
    doc.pop("timings_s")
    return doc


def _centre(session) -> tuple[float, float]:
    c = session.study.net.extent_wgs84().centroid
    return float(c.x), float(c.y)


def test_edits_through_http_equal_a_batch_run(client, studio):
    session = studio[0].session
    lon, lat = _centre(session)
    before = client.get("/api/summary").json()
    assert before == batch_summary(session)

    r = client.post(
        "/api/facilities", json={"layer": "canteen", "lon": lon, "lat": lat, "name": "新食堂"}
    )
    assert r.status_code == 200
    fid = r.json()["id"]
    added = r.json()["summary"]
    assert added == batch_summary(session) == client.get("/api/summary").json()
    assert added["layers"]["canteen"]["facilities"] == before["layers"]["canteen"]["facilities"] + 1
    assert (
        added["layers"]["canteen"]["coverage_rate"] > before["layers"]["canteen"]["coverage_rate"]
    )

    r = client.patch(f"/api/facilities/{fid}", json={"lon": lon + 0.004, "lat": lat - 0.002})
    assert r.status_code == 200 and r.json()["summary"] == batch_summary(session)

    first = client.get("/api/facilities?layer=elderly_station").json()["features"][0]["id"]
    r = client.delete(f"/api/facilities/{first}?layer=elderly_station")
    assert r.status_code == 200 and r.json()["summary"] == batch_summary(session)

    r = client.patch("/api/layers/canteen", json={"speed_kmh": 3.0, "minutes": [5, 10, 15, 20]})
    doc = r.json()["summary"]
    assert r.status_code == 200 and doc == batch_summary(session)
    assert doc["layers"]["canteen"]["speed_kmh"] == 3.0
    assert set(doc["layers"]["canteen"]["coverage_rate_by_minutes"]) == {"5", "10", "15", "20"}
    assert doc["targets"], "the demo's planning targets are evaluated live"


def test_facilities_geojson_and_undo_redo(client, studio):
    fc = client.get("/api/facilities?layer=canteen").json()
    assert fc["type"] == "FeatureCollection"
    assert all(
        f["id"] == f["properties"]["id"] and f["geometry"]["type"] == "Point"
        for f in fc["features"]
    )
    n = len(fc["features"])
    lon, lat = _centre(studio[0].session)
    client.post("/api/facilities", json={"layer": "canteen", "lon": lon, "lat": lat})
    assert len(client.get("/api/facilities?layer=canteen").json()["features"]) == n + 1
    r = client.post("/api/undo")
    assert r.status_code == 200 and r.json()["state"]["can_redo"]
    assert len(client.get("/api/facilities?layer=canteen").json()["features"]) == n
    client.post("/api/redo")
    assert len(client.get("/api/facilities?layer=canteen").json()["features"]) == n + 1
    assert client.get("/api/summary").json() == batch_summary(studio[0].session)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/api/facilities", {"layer": "cantene", "lon": 120.2, "lat": 30.27}, 400, "layer"),
        ("POST", "/api/facilities", {"layer": "canteen", "lat": 30.27}, 400, "lon"),
        ("POST", "/api/facilities", {"layer": "canteen", "lon": "x", "lat": 30.27}, 400, "lon"),
        ("POST", "/api/facilities", {"layer": "canteen", "lon": 120.2, "lat": 95}, 400, "lat"),
        ("POST", "/api/facilities", {"layer": "canteen", "lon": 0.0, "lat": 0.0}, 400, "lon/lat"),
        (
            "POST",
            "/api/facilities",
            {"layer": "canteen", "lon": 120.2, "lat": 30.2, "name": 5},
            400,
            "name",
        ),
        ("POST", "/api/facilities", [1, 2], 400, "body"),
        ("PATCH", "/api/facilities/nope", {"lon": 120.2, "lat": 30.27}, 404, "id"),
        ("DELETE", "/api/facilities/nope", None, 404, "id"),
        ("PATCH", "/api/layers/canteen", {"speed_kmh": -3}, 400, "speed_kmh"),
        ("PATCH", "/api/layers/canteen", {"speed_kmh": "fast"}, 400, "speed_kmh"),
        ("PATCH", "/api/layers/canteen", {"minutes": "15"}, 400, "minutes"),
        ("PATCH", "/api/layers/canteen", {"colour": 1}, 400, "colour"),
        ("POST", "/api/suggest", {"layer": "canteen", "model": "magic"}, 400, "model"),
        ("POST", "/api/suggest", {"layer": "canteen", "model": "mclp", "p": 0}, 400, "p"),
        ("GET", "/api/facilities?layer=../../etc", None, 400, "layer"),
    ],
)
def test_bad_requests_are_4xx_and_change_nothing(client, studio, method, path, body, status, field):
    session = studio[0].session
    before, steps = client.get("/api/summary").json(), len(session.history)
    r = client.request(method, path, json=body)
    assert r.status_code == status
    err = r.json()["error"]
    assert err.startswith(field + ":") and "\n" not in err
    assert client.get("/api/summary").json() == before and len(session.history) == steps


def test_not_json_and_oversized_bodies(client):
    r = client.post(
        "/api/facilities", content=b"{lon", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"].startswith("body:")
    r = client.post("/api/facilities", content=b"x" * (65 * 1024))
    assert r.status_code == 413 and r.json()["error"].startswith("body:")


def test_token_guards_the_page_and_every_api_call(studio):
    guarded = TestClient(create_app(studio[0].session, token="s3cret"))
    assert guarded.get("/api/summary").status_code == 401
    assert guarded.get("/").status_code == 401
    assert guarded.get("/api/summary", headers={"X-Studio-Token": "wrong"}).status_code == 401
    assert guarded.get("/api/summary", headers={"X-Studio-Token": "s3cret"}).status_code == 200
    assert guarded.get("/?token=s3cret").status_code == 200
    args = cli._parser().parse_args(["serve", "--demo", "--host", "0.0.0.0"])
    assert not cli._loopback(args.host) and cli._loopback("127.0.0.1") and cli._loopback("::1")


def _wait(client, job_id: str, timeout_s: float = 120.0) -> dict:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        j = client.get(f"/api/jobs/{job_id}").json()
        if j["state"] != "running":
            return j
        time.sleep(0.2)
    raise AssertionError("job did not finish")


@pytest.mark.parametrize("model", ["mclp", "lscp", "pmedian"])
def test_suggest_for_the_current_scenario_and_accept(client, studio, model):
    body = {"layer": "canteen", "model": model} | ({} if model == "lscp" else {"p": 2})
    r = client.post("/api/suggest", json=body)
    assert r.status_code == 202
    job = _wait(client, r.json()["id"])
    assert job["state"] == "done", job["error"]
    assert job["steps"] == ["gaps", "candidates", "solving", "done"]
    sites = job["result"]["sites"]
    assert sites and [s["rank"] for s in sites] == list(range(1, len(sites) + 1))
    if model != "mclp":
        return
    before = client.get("/api/summary").json()["layers"]["canteen"]["covered_population"]
    top = sites[0]
    r = client.post(
        "/api/facilities",
        json={"layer": "canteen", "lon": top["lon"], "lat": top["lat"], "name": top["name"]},
    )
    after = r.json()["summary"]["layers"]["canteen"]["covered_population"]
    assert after == pytest.approx(before + top["added_population"], rel=1e-9)


def test_suggest_shows_the_first_answer_before_the_proof(client, studio, monkeypatch):
    """A solver that finds its answer before proving it: the job says the answer and bound.

    The demo's instances are proven at once, so the solver is wrapped to announce its final
    answer as unproven first, as the exact MCLP path does on a city (``on_incumbent``).
    """
    import dataclasses

    import coverage.analysis as analysis

    real = analysis.solve
    seen: list[float] = []

    def solve(problem, model, **kw):  # type: ignore[no-untyped-def]
        on_first = kw.pop("on_incumbent")
        sol = real(problem, model, **kw)
        first = dataclasses.replace(sol, optimal=False, method="heuristic")
        seen.append(first.objective)
        on_first(first)
        return sol

    monkeypatch.setattr(analysis, "solve", solve)
    r = client.post("/api/suggest", json={"layer": "canteen", "model": "mclp", "p": 2})
    job = _wait(client, r.json()["id"])
    assert job["state"] == "done", job["error"]
    assert job["steps"] == ["gaps", "candidates", "solving", "first_answer", "done"]
    assert job["first"]["sites"] == 2 and job["first"]["objective"] == pytest.approx(seen[0])
    assert job["first"]["bound"] >= job["first"]["objective"]


def test_scenarios_save_reopen_compare(client, studio):
    session, folder = studio[0].session, studio[1]
    saved = client.get("/api/summary").json()
    r = client.post("/api/scenarios", json={"name": "方案 A"})
    assert r.status_code == 200
    geo = folder / "scenarios" / "方案 A.geojson"
    meta = json.loads((folder / "scenarios" / "方案 A.json").read_text(encoding="utf-8"))
    fac = gpd.read_file(geo)  # what QGIS opens
    assert set(fac["kind"]) == set(saved["layers"]) and fac.crs.to_epsg() == 4326
    assert len(fac) == sum(
        v["facilities"] + v["facilities_unsnapped"] for v in saved["layers"].values()
    )
    assert meta["layers"]["canteen"]["speed_kmh"] == saved["layers"]["canteen"]["speed_kmh"]

    lon, lat = _centre(session)
    client.post("/api/facilities", json={"layer": "neighborhood_center", "lon": lon, "lat": lat})
    now = client.get("/api/summary").json()
    cmp = client.get("/api/compare", params={"a": "方案 A", "b": ""}).json()
    assert cmp["summary_a"] == saved and cmp["summary_b"] == now
    gain = cmp["changes"]["neighborhood_center"]["gain_population"]
    lost = cmp["changes"]["neighborhood_center"]["lose_population"]
    delta = (
        now["layers"]["neighborhood_center"]["covered_population"]
        - saved["layers"]["neighborhood_center"]["covered_population"]
    )
    assert gain > 0 and gain - lost == pytest.approx(delta)

    r = client.post("/api/scenarios/方案 A/open")
    assert r.status_code == 200 and r.json()["summary"] == saved
    assert client.get("/api/scenarios").json()["scenarios"][0]["name"] == "方案 A"


@pytest.mark.parametrize(
    "name", ["../evil", "a/b", "..", "", "x" * 61, "a.b", "/etc/passwd", "%2e%2e"]
)
def test_scenario_names_are_never_paths(client, studio, name):
    folder = studio[1]
    before = sorted(p.name for p in folder.parent.iterdir())
    r = client.post("/api/scenarios", json={"name": name})
    assert r.status_code == 400 and r.json()["error"].startswith("name:")
    assert sorted(p.name for p in folder.parent.iterdir()) == before
    assert not list(folder.rglob("*evil*")) and not list(folder.rglob("passwd*"))


def test_export_is_the_run_output(client, studio):
    folder = studio[1]
    live = client.get("/api/summary").json()
    r = client.post("/api/export", json={"name": "export-1"})
    assert r.status_code == 202
    job = _wait(client, r.json()["id"], 300)
    assert job["state"] == "done", job["error"]
    out = folder / "exports" / "export-1"
    for name in ("map.html", "report.html", "report.xlsx", "summary.json", "gis"):
        assert (out / name).exists(), name
    assert (out / ".servicecircle-output").exists()  # the run's output-folder marker
    written = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    for key in ("layers", "areas", "equity", "targets", "residents", "population"):
        assert written[key] == live[key], key
    assert written["suggestions"], "the plan's suggestions run in the export, as in run"
    r = client.post("/api/export", json={"name": "export-1"})
    assert r.status_code == 409 and r.json()["error"].startswith("name:")


def test_serve_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["serve", str(tmp_path / "missing.toml"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    plan = tmp_path / "p.toml"
    plan.write_text('title = "x"\n', encoding="utf-8")
    assert cli.main(["serve", str(plan), "--demo", "--quiet"]) == 2
    assert "--demo" in capsys.readouterr().err


def test_page_is_offline_and_bilingual(client):
    r = client.get("/")
    assert r.status_code == 200 and "default-src 'self'" in r.headers["content-security-policy"]
    html = r.text
    assert "http://" not in html and "https://" not in html  # no CDN
    assert '<html lang="zh">' in html and client.get("/?lang=en").text.startswith(
        '<!DOCTYPE html>\n<html lang="en">'
    )
    assert client.get("/leaflet/leaflet.js").status_code == 200
    assert client.get("/static/studio.js").status_code == 200
    assert client.get("/static/../app.py").status_code == 404
