"""A new study from uploaded files (POST /api/upload) through Starlette's TestClient: the demo's
own files give the batch run's summary, errors are the CLI's one line and change nothing, size
limits are a 413, and no client file name or zip member is ever a path."""

from __future__ import annotations

import io
import json
import time
import uuid
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

import app as cli

pytest.importorskip("starlette")
pytest.importorskip("multipart")
with warnings.catch_warnings():  # Starlette 1.x prefers httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from data.demo import generate_demo, write_demo
from maps.studio.server import create_app
from maps.studio.upload import Limits


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return write_demo(generate_demo(seed=2026), tmp_path_factory.mktemp("d") / "in", force=True)


def _studio(folder: Path):
    args = cli._parser().parse_args(["serve", "--demo", "--study", str(folder)])
    guard, _, _ = cli.studio_app(args, cli.Progress(False))
    return guard


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """A demo studio the error tests share: none of them may change its study."""
    base = tmp_path_factory.mktemp("errors")
    return _studio(base / "study"), base


@pytest.fixture(scope="module")
def client(studio):
    return TestClient(studio[0])


def _multipart(fields: dict[str, str], files: list[tuple[str, bytes, bytes]]) -> tuple[bytes, str]:
    """A multipart body built by hand, so file names reach the server byte for byte."""
    b = uuid.uuid4().hex
    out = bytearray()
    for k, v in fields.items():
        out += f'--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    for k, name, data in files:
        out += f'--{b}\r\nContent-Disposition: form-data; name="{k}"; filename="'.encode()
        out += name + b'"\r\nContent-Type: application/octet-stream\r\n\r\n' + data + b"\r\n"
    out += f"--{b}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={b}"


def _demo_form(demo, **override: tuple[str, bytes] | str | None):
    """The demo's own input files as the page's form sends them (names as a planner has them)."""
    files = {
        "residents": ("居民 residents.gpkg", demo.residents_gpkg.read_bytes()),
        "network": ("streets.osm", demo.streets_osm.read_bytes()),
        "areas": ("街道.gpkg", demo.areas_gpkg.read_bytes()),
    }
    fields = {"areas_layer": "streets_areas", "title": "上传的研究"}
    for i, (kind, path) in enumerate(demo.facilities.items(), start=1):
        files[f"layer{i}"] = (path.name, path.read_bytes())
        fields[f"layer{i}_kind"] = kind
        if path.suffix == ".csv":
            fields[f"layer{i}_coords"] = "gcj02"
    for k, v in override.items():
        if v is None:
            files.pop(k, None)
            fields.pop(k, None)
        elif isinstance(v, tuple):
            files[k] = v
        else:
            fields[k] = v
    return fields, [(k, n.encode(), d) for k, (n, d) in files.items()]


def _post(client, fields, files, **headers):
    body, ctype = _multipart(fields, files)
    return client.post("/api/upload", content=body, headers={"content-type": ctype, **headers})


def _wait(client, job: dict) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        j = client.get(f"/api/jobs/{job['id']}").json()
        if j["state"] != "running":
            return j
        time.sleep(0.05)
    raise AssertionError("upload job did not finish")


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _cli_run(demo, out: Path, *extra: str) -> tuple[int, str]:
    argv = [
        "run", "--quiet", "--residents", str(demo.residents_gpkg), "--network",
        str(demo.streets_osm), "--areas", str(demo.areas_gpkg), "--areas-layer", "streets_areas",
        "--title", "上传的研究", "--formats", "geojson", "--out", str(out), *extra,
    ]  # fmt: skip
    for kind, path in demo.facilities.items():
        argv += ["--layer", f"{kind}={path}"]
        if path.suffix == ".csv":
            argv += ["--coords", f"{kind}=gcj02"]
    import contextlib

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, err.getvalue().strip()


def test_upload_of_the_demo_files_equals_the_batch_run(demo, tmp_path):
    guard = _studio(tmp_path / "study")
    client = TestClient(guard)
    session = guard.session
    assert client.post("/api/scenarios", json={"name": "旧方案"}).status_code == 200

    info = client.get("/api/upload").json()
    assert (
        "canteen" in {k["kind"] for k in info["kinds"]} and ".osm.pbf" in info["network_suffixes"]
    )
    r = _post(client, *_demo_form(demo))
    assert r.status_code == 202, r.text
    job = _wait(client, r.json())
    assert job["state"] == "done", job["error"]
    sid = job["result"]["study"]

    # stored under generated names in the per-study folder; the client's names only as text
    up = tmp_path / "study" / "uploads" / sid
    assert session.folder == up and session.root == tmp_path / "study"
    assert sorted(p.name for p in (up / "inputs").iterdir()) == [
        "areas.gpkg", "layer-1.csv", "layer-2.geojson", "layer-3.geojson", "layer-4.geojson",
        "network.osm", "residents.gpkg",
    ]  # fmt: skip
    assert job["result"]["files"]["residents.gpkg"] == "居民 residents.gpkg"
    assert not list((tmp_path / "study" / "uploads").glob(".part-*"))

    code, _ = _cli_run(demo, tmp_path / "batch")
    assert code == 0
    batch = json.loads((tmp_path / "batch" / "summary.json").read_text(encoding="utf-8"))
    batch.pop("timings_s")
    live = client.get("/api/summary").json()
    assert live == batch
    assert live["title"] == "上传的研究" and live["synthetic"] is True
    assert "上传的研究" in client.get("/").text

    # the old study's scenarios stay in their folder; the new study starts with none
    assert (tmp_path / "study" / "scenarios" / "旧方案.json").is_file()
    assert client.get("/api/scenarios").json()["scenarios"] == []
    assert client.get("/api/state").json()["can_undo"] is False
    lon, lat = (float(v) for v in session.study.net.extent_wgs84().centroid.coords[0])
    r = client.post("/api/facilities", json={"layer": "canteen", "lon": lon, "lat": lat})
    assert r.status_code == 200
    assert client.post("/api/scenarios", json={"name": "新方案"}).status_code == 200
    assert (up / "scenarios" / "新方案.geojson").is_file()


def test_a_bad_column_is_the_clis_one_line_and_changes_nothing(client, studio, demo, tmp_path):
    before = client.get("/api/summary").json()
    fields, files = _demo_form(demo, residents_columns="population=常住人口")
    r = _post(client, fields, files)
    assert r.status_code == 202, r.text
    job = _wait(client, r.json())
    assert job["state"] == "failed"
    code, cli_err = _cli_run(demo, tmp_path / "o", "--residents-columns", "population=常住人口")
    assert code == 2
    expected = cli_err.removeprefix("error: ").replace(
        str(demo.residents_gpkg), "居民 residents.gpkg"
    )
    assert job["error"] == expected and "常住人口" in expected and "\n" not in expected
    assert client.get("/api/summary").json() == before
    assert not (studio[1] / "study" / "uploads").exists() or not any(
        (studio[1] / "study" / "uploads").iterdir()
    ), "a refused study leaves no folder"


@pytest.mark.parametrize(
    ("override", "status", "start"),
    [
        ({"network": None}, 400, "network: missing"),
        ({"layer1_kind": "cantene"}, 400, "layer1_kind: 'cantene' is not a layer kind"),
        ({"layer1_kind": "canteen", "layer2_kind": "canteen"}, 400, "layer2_kind: 'canteen'"),
        ({"network": ("streets.osm.bz3", b"x")}, 400, "network: 'streets.osm.bz3' is not"),
        ({"residents": ("居民.xls", b"x")}, 400, "residents: '居民.xls' is not a supported"),
        ({"bogus": "1"}, 400, "bogus: not a field of the upload"),
    ],
)
def test_form_errors_are_one_line_4xx(client, studio, demo, override, status, start):
    before = client.get("/api/summary").json()
    r = _post(client, *_demo_form(demo, **override))
    assert r.status_code == status
    assert r.json()["error"].startswith(start) and "\n" not in r.json()["error"]
    assert client.get("/api/summary").json() == before


def test_size_limits_are_a_413(studio, demo):
    guard, base = studio
    small = create_app(
        guard.session,
        uploads=replace(guard.uploads, limits=Limits(file_bytes=200_000, study_bytes=600_000)),
    )
    client = TestClient(small)
    fields, files = _demo_form(demo, network=("big.osm.pbf", b"0" * 250_000))
    r = _post(client, fields, files)
    assert r.status_code == 413 and r.json()["error"].startswith("network: larger than")
    fields, files = _demo_form(demo)
    body, ctype = _multipart(fields, [*files, ("layer9", b"x.csv", b"0" * 700_000)])
    r = client.post("/api/upload", content=body, headers={"content-type": ctype})
    assert r.status_code == 413 and r.json() == {
        "error": "upload: larger than 0.572205 MB; upload a smaller file (clip it to the study)"
    }

    def chunks():  # no content-length: the limit is counted as the body arrives
        yield body[:1000]
        yield body[1000:]

    r = client.post("/api/upload", content=chunks(), headers={"content-type": ctype})
    assert r.status_code == 413
    uploads = base / "study" / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


@pytest.mark.parametrize(
    ("name", "status"),
    [
        (b"../../etc/passwd", 400),
        (b"..\\x.csv", 202),
        (b"/abs/path.csv", 202),
        (b"a/../../b.gpkg", 202),
        (b"../../../../tmp/evil.gpkg", 202),
        (b"x\x00.csv", 400),
        (b"a" * 300 + b".csv", 400),
        (b"", 400),
    ],
)
def test_client_file_names_are_never_paths(studio, demo, name, status):
    guard, base = studio
    client = TestClient(guard)
    outside = _tree(base)
    fields, files = _demo_form(demo)
    files = [(k, name if k == "residents" else n, b"not a layer" if k == "residents" else d)
             for k, n, d in files]  # fmt: skip
    r = _post(client, fields, files)
    assert r.status_code == status, r.text
    if status == 202:  # a usable name: stored as residents.csv/.gpkg, then refused as data
        job = _wait(client, r.json())
        assert job["state"] == "failed" and "\n" not in job["error"]
        assert "uploads/" not in job["error"] and str(base) not in job["error"]
    else:
        assert r.json()["error"].startswith("residents: ") and "\n" not in r.json()["error"]
    after = _tree(base)
    assert {p for p in after - outside if not p.startswith("study/uploads")} == set()
    assert not list(base.parent.glob("*passwd*")) and not Path("/tmp/evil.gpkg").exists()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("members", "start"),
    [
        ({"../evil.shp": b"x", "../evil.dbf": b"x"}, "residents: zip member '../evil.shp' points"),
        ({"a/../../evil.shp": b"x"}, "residents: zip member 'a/../../evil.shp' points"),
        ({"/abs/evil.shp": b"x"}, "residents: zip member '/abs/evil.shp' points"),
        ({"a.shp": b"x", "b.shp": b"x"}, "residents: the zip holds 2 Shapefiles"),
        ({"readme.txt": b"x"}, "residents: the zip holds 0 Shapefiles"),
        ({f"f{i}.txt": b"x" for i in range(40)}, "residents: the zip holds 40 files"),
    ],
)
def test_a_zip_with_a_bad_member_is_refused(studio, demo, members, start):
    guard, base = studio
    client = TestClient(guard)
    outside = _tree(base)
    fields, files = _demo_form(demo, residents=("居民.zip", _zip(members)))
    r = _post(client, fields, files)
    assert r.status_code == 400 and r.json()["error"].startswith(start), r.text
    assert _tree(base) - outside <= {"study/uploads"}
    assert not list(base.rglob("evil*"))


def test_a_zipped_shapefile_is_read(studio, demo, tmp_path):
    import geopandas as gpd

    shp = tmp_path / "shp"
    shp.mkdir()
    gpd.read_file(demo.residents_gpkg).to_file(shp / "居民.shp", encoding="utf-8")
    members = {f"居民/{p.name}": p.read_bytes() for p in shp.iterdir()}
    members["__MACOSX/居民/._居民.shp"] = b"x"
    guard, base = studio
    client = TestClient(guard)
    session = guard.session
    before = client.get("/api/summary").json()
    # a zipped Shapefile is accepted; the group columns asked for are the CLI's check
    fields, files = _demo_form(
        demo, residents=("居民.zip", _zip(members)), residents_columns="elderly=老人"
    )
    r = _post(client, fields, files)
    assert r.status_code == 202, r.text
    job = _wait(client, r.json())
    assert job["state"] == "failed" and "居民.zip" in job["error"] and "老人" in job["error"]
    assert client.get("/api/summary").json() == before and session.folder == base / "study"


def test_cross_site_form_and_wrong_type_are_refused(client, demo):
    fields, files = _demo_form(demo)
    r = _post(client, fields, files, origin="http://evil.example")
    assert r.status_code == 403 and r.json()["error"].startswith("origin:")
    r = client.post("/api/upload", json={"residents": "x"})
    assert r.status_code == 415 and r.json()["error"].startswith("upload: send the files")
