"""The studio's HTTP side: the JSON API (documented in the README) and the page.

Starlette on uvicorn: Starlette is a small, well-kept ASGI toolkit (the base FastAPI is built
on) with a test client that needs no open port, and uvicorn is its reference server; the API is
a dozen JSON routes, so FastAPI's schema layer would add a pydantic dependency and no safety the
explicit checks below do not already give.  Handlers are async only to read the body; the
numbers are computed on Starlette's thread pool under the session's lock.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from layers.errors import InputError
from maps.studio.session import Session, StudioError
from maps.studio.texts import TEXTS
from maps.studio.upload import UploadConfig, read_form, store

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
LEAFLET = HERE.parent / "assets" / "leaflet"
#: Largest request body accepted (JSON edits are a few hundred bytes).
MAX_BODY = 64 * 1024
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
)


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message.splitlines()[0]}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object of a request, at most :data:`MAX_BODY` bytes."""
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > MAX_BODY:
        msg = f"body: larger than {MAX_BODY // 1024} KB; send only the fields"
        raise StudioError(msg, status=413)
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > MAX_BODY:
            msg = f"body: larger than {MAX_BODY // 1024} KB; send only the fields"
            raise StudioError(msg, status=413)
    try:
        doc = json.loads(bytes(chunks) or b"{}")
    except (ValueError, UnicodeDecodeError) as err:
        msg = 'body: not JSON; send a JSON object, e.g. {"lon": 120.1, "lat": 30.2}'
        raise StudioError(msg) from err
    if not isinstance(doc, dict):
        msg = 'body: send a JSON object, e.g. {"lon": 120.1, "lat": 30.2}'
        raise StudioError(msg)
    return doc


def _coord(doc: dict[str, Any], key: str, lo: float, hi: float) -> float:
    v = doc.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        msg = (
            f"{key}: missing or not a number; send decimal degrees (WGS84), e.g. "
            f"{ {'lon': 120.16, 'lat': 30.27}[key] }"
        )
        raise StudioError(msg)
    if not lo <= v <= hi:
        msg = f"{key}: {v} is not between {lo:g} and {hi:g}; send WGS84 degrees"
        raise StudioError(msg)
    return float(v)


def _name(doc: dict[str, Any]) -> str:
    v = doc.get("name", "")
    if not isinstance(v, str) or len(v) > 200:
        msg = "name: send text of at most 200 characters"
        raise StudioError(msg)
    return v


Handler = Callable[[Request], Awaitable[Response]]


def _api(fn: Callable[[Request], Awaitable[Any]]) -> Handler:
    """A JSON route: StudioError/InputError become a 4xx with one line; the scenario stays."""

    async def route(request: Request) -> Response:
        t0 = time.perf_counter()
        try:
            out = await fn(request)
        except StudioError as err:
            return _error(str(err), err.status)
        except InputError as err:
            return _error(str(err), 400)
        except Exception as err:  # a bug, not the request: logged, said in one line
            log.exception("studio: %s %s failed", request.method, request.url.path)
            return _error(f"internal error: {type(err).__name__}: {err}", 500)
        resp = out if isinstance(out, Response) else JSONResponse(out)
        # the server's own time (work and JSON encoding), shown by a browser's developer tools
        # and read by bench/bench_studio.py: the edit budget is a server-side figure
        resp.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - t0) * 1000:.2f}"
        return resp

    return route


class TokenGuard:
    """Every /api call and the page carry the token (header ``X-Studio-Token`` or ``?token=``)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token
        self.session: Session | None = None
        self.uploads: UploadConfig | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a request without the token (401, one line); pass the others on."""
        if self.token and scope["type"] == "http":
            path = scope.get("path", "")
            if path == "/" or path.startswith("/api"):
                req = Request(scope)
                given = req.headers.get("x-studio-token") or req.query_params.get("token") or ""
                if not hmac.compare_digest(given.encode(), self.token.encode()):
                    resp = _error("token: missing or wrong; open the URL the server printed", 401)
                    await resp(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _same_origin(request: Request) -> None:
    """A form posted by another site's page is refused (a browser always sends its Origin)."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
        msg = "origin: uploads are taken from the studio's own page only; open the printed URL"
        raise StudioError(msg, status=403)


def create_app(
    session: Session,
    *,
    token: str | None = None,
    lang: str = "zh",
    uploads: UploadConfig | None = None,
) -> TokenGuard:
    """The studio as an ASGI app (uvicorn serves it; tests use Starlette's TestClient).

    ``uploads`` (``app.py``'s reading and checks) turns on ``/api/upload``: a new study from
    the page's files.
    """

    def edited(extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {**(extra or {}), "summary": session.summary(), "state": session.state()}

    async def summary(request: Request) -> Any:
        return await run_in_threadpool(session.summary)

    async def state(request: Request) -> Any:
        return session.state()

    async def list_facilities(request: Request) -> Any:
        kind = session.kind(request.query_params.get("layer"))
        return await run_in_threadpool(session.facilities_geojson, kind)

    async def add_facility(request: Request) -> Any:
        doc = await _body(request)
        kind = session.kind(doc.get("layer"))
        lon, lat = _coord(doc, "lon", -180, 180), _coord(doc, "lat", -90, 90)
        name = _name(doc)

        def run() -> dict[str, Any]:
            fid = session.add(kind, lon=lon, lat=lat, name=name)
            return edited({"id": fid})

        return await run_in_threadpool(run)

    async def move_facility(request: Request) -> Any:
        doc = await _body(request)
        fid = request.path_params["id"]
        lon, lat = _coord(doc, "lon", -180, 180), _coord(doc, "lat", -90, 90)
        layer = request.query_params.get("layer")

        def run() -> dict[str, Any]:
            session.move(fid, lon=lon, lat=lat, layer=layer)
            return edited()

        return await run_in_threadpool(run)

    async def remove_facility(request: Request) -> Any:
        fid = request.path_params["id"]
        layer = request.query_params.get("layer")

        def run() -> dict[str, Any]:
            session.remove(fid, layer=layer)
            return edited()

        return await run_in_threadpool(run)

    async def set_layer(request: Request) -> Any:
        doc = await _body(request)
        kind = session.kind(request.path_params["kind"])
        unknown = set(doc) - {"speed_kmh", "minutes"}
        if unknown:
            msg = f"{sorted(unknown)[0]}: not a layer setting; send speed_kmh or minutes"
            raise StudioError(msg)

        def run() -> dict[str, Any]:
            session.set_layer(kind, speed_kmh=doc.get("speed_kmh"), minutes=doc.get("minutes"))
            return edited()

        return await run_in_threadpool(run)

    async def undo(request: Request) -> Any:
        await run_in_threadpool(session.undo)
        return await run_in_threadpool(edited)

    async def redo(request: Request) -> Any:
        await run_in_threadpool(session.redo)
        return await run_in_threadpool(edited)

    async def base(request: Request) -> Any:
        return await run_in_threadpool(session.base_layers)

    async def map_layer(request: Request) -> Any:
        kind = session.kind(request.query_params.get("layer"))
        return await run_in_threadpool(session.map_layer, kind)

    async def suggest(request: Request) -> Any:
        doc = await _body(request)
        kind = session.kind(doc.get("layer"))
        job = session.start_suggest(kind, model=doc.get("model", "mclp"), p=doc.get("p", 3))
        return JSONResponse(job.public(), status_code=202)

    async def job(request: Request) -> Any:
        j = session.jobs.get(request.path_params["id"])
        if j is None:
            msg = "id: no such job; start one with POST /api/suggest"
            raise StudioError(msg, status=404)
        return j.public()

    async def scenarios(request: Request) -> Any:
        return {"scenarios": await run_in_threadpool(session.scenarios)}

    async def save(request: Request) -> Any:
        doc = await _body(request)
        return await run_in_threadpool(session.save, doc.get("name"))

    async def open_scenario(request: Request) -> Any:
        name = request.path_params["name"]

        def run() -> dict[str, Any]:
            session.open(name)
            return edited()

        return await run_in_threadpool(run)

    async def compare(request: Request) -> Any:
        q = request.query_params
        return await run_in_threadpool(session.compare, q.get("a", ""), q.get("b", ""))

    async def export(request: Request) -> Any:
        doc = await _body(request)
        return JSONResponse(session.start_export(doc.get("name")).public(), status_code=202)

    def upload_config() -> UploadConfig:
        if uploads is None:
            msg = "upload: this studio was started without uploads"
            raise StudioError(msg, status=409)
        return uploads

    async def upload_info(request: Request) -> Any:
        return upload_config().public()

    async def upload(request: Request) -> Any:
        config = upload_config()
        _same_origin(request)
        if session.uploading:
            msg = "upload: another study is being read; wait for it to finish"
            raise StudioError(msg, status=409)
        try:
            title, named, layers = await read_form(request, config)
            stored = await run_in_threadpool(
                store, session.root, title, named, layers, config.limits
            )
        finally:
            form = getattr(request.state, "upload_form", None)
            if form is not None:
                await form.close()
        job = session.start_upload(stored, config.open)
        return JSONResponse(job.public(), status_code=202)

    async def page(request: Request) -> Response:
        want = request.query_params.get("lang", lang)
        html = (HERE / "page.html").read_text(encoding="utf-8")
        html = html.replace("{{TITLE}}", escape(session.title)).replace(
            "{{LANG}}", "en" if want == "en" else "zh"
        )
        html = html.replace("{{TEXTS}}", escape(json.dumps(TEXTS, ensure_ascii=False), quote=False))
        return HTMLResponse(html, headers={"Content-Security-Policy": CSP})

    routes = [
        Route("/", page),
        Route("/api/summary", _api(summary)),
        Route("/api/state", _api(state)),
        Route("/api/facilities", _api(list_facilities), methods=["GET"]),
        Route("/api/facilities", _api(add_facility), methods=["POST"]),
        Route("/api/facilities/{id}", _api(move_facility), methods=["PATCH"]),
        Route("/api/facilities/{id}", _api(remove_facility), methods=["DELETE"]),
        Route("/api/layers/{kind}", _api(set_layer), methods=["PATCH"]),
        Route("/api/undo", _api(undo), methods=["POST"]),
        Route("/api/redo", _api(redo), methods=["POST"]),
        Route("/api/base", _api(base)),
        Route("/api/map", _api(map_layer)),
        Route("/api/suggest", _api(suggest), methods=["POST"]),
        Route("/api/jobs/{id}", _api(job)),
        Route("/api/scenarios", _api(scenarios), methods=["GET"]),
        Route("/api/scenarios", _api(save), methods=["POST"]),
        Route("/api/scenarios/{name}/open", _api(open_scenario), methods=["POST"]),
        Route("/api/compare", _api(compare)),
        Route("/api/export", _api(export), methods=["POST"]),
        Route("/api/upload", _api(upload_info), methods=["GET"]),
        Route("/api/upload", _api(upload), methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        Mount("/leaflet", StaticFiles(directory=LEAFLET), name="leaflet"),
    ]
    guard = TokenGuard(Starlette(routes=routes), token)
    guard.session = session  # for the CLI and tests
    guard.uploads = uploads
    return guard
