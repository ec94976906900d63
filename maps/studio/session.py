"""One studio session: the scenario being edited, its history, scenarios on disk, jobs.

The scenario is an immutable :class:`coverage.whatif.Study`; every edit pushes a new one onto
the history (undo/redo move along it), and an edit that fails raises before anything is pushed,
so the scenario is left as it was.  One lock serialises edits: the HTTP server runs handlers on
a thread pool.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage.analysis import StudyInputs, layer_candidates, layer_gaps, suggest_sites
from coverage.result import StudyResult
from coverage.state import layer_horizon_m
from coverage.summary import json_number, summary_dict
from coverage.whatif import Study
from layers.atomic import atomic_path
from maps.studio.live import LayerCache, live_result

log = logging.getLogger(__name__)

#: Scenario names become file names: letters (any script), digits, '-', '_' and spaces only.
NAME_RE = re.compile(r"[\w\- ]{1,60}")
MODELS = ("mclp", "lscp", "pmedian")
Export = Callable[[StudyInputs, Path, Callable[[str], None]], dict[str, Any]]


class StudioError(ValueError):
    """A request the studio refuses: one line naming the field and the fix (HTTP 4xx)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class StudyStart:
    """A study ready to edit: what :meth:`Session.switch` makes current (an upload's result)."""

    study: Study
    title: str
    synthetic: bool
    sources: tuple[str, ...]
    folder: Path
    export: Export | None = None


@dataclass
class Job:
    """A background task (suggestions, export) the page polls."""

    id: str
    kind: str
    state: str = "running"  # running | done | failed
    steps: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    result: Any = None
    error: str = ""
    first: dict[str, Any] | None = None  # a suggestion's first answer, before it is proven

    def public(self) -> dict[str, Any]:
        """What GET /api/jobs/{id} returns."""
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "steps": list(self.steps),
            "elapsed_s": round(time.perf_counter() - self.started, 1),
            "result": self.result,
            "error": self.error,
            "first": self.first,
        }


def check_name(value: Any, *, field_name: str = "name") -> str:
    """A scenario name safe as a file name (never a path: no dots, no slashes)."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value.strip() or "."):
        msg = (
            f"{field_name}: use 1-60 letters, digits, spaces, '-' or '_' (e.g. 方案A or plan-2027)"
        )
        raise StudioError(msg)
    return value.strip()


class Session:
    """The studio's state: history of scenarios, the study folder, background jobs.

    Parameters
    ----------
    study
        The routed study as the plan gives it (the first history entry).
    title, synthetic, sources
        As the batch run labels its outputs.
    folder
        The study folder: ``scenarios/`` and ``exports/`` are written under it.
    export
        Writes the full batch output of edited inputs into a folder (``app.py``'s code of
        ``run``); ``None`` turns exports off.
    """

    def __init__(
        self,
        study: Study,
        *,
        title: str,
        synthetic: bool,
        sources: tuple[str, ...],
        folder: Path,
        export: Export | None = None,
    ) -> None:
        self.title = title
        self.synthetic = synthetic
        self.sources = sources
        self.folder = Path(folder)
        #: The server's data directory (``--study``): uploads go to ``root/uploads/ID``.
        self.root = self.folder
        self.export_fn = export
        self.uploading = False
        self.history: list[Study] = [study]
        self.pos = 0
        self.lock = threading.RLock()
        self.cache = LayerCache()
        self._results: dict[tuple[int, bool], tuple[Study, StudyResult, dict[str, Any]]] = {}
        self.jobs: dict[str, Job] = {}
        self.current_name = ""

    # ---------------------------------------------------------------------- a new study

    def switch(self, start: StudyStart) -> None:
        """Make another study current: a fresh history, its own folder for scenarios."""
        keys = "history pos title synthetic sources folder export_fn cache _results current_name"
        with self.lock:
            was = {k: getattr(self, k) for k in keys.split()}
            self.history = [start.study]
            self.pos = 0
            self.title = start.title
            self.synthetic = start.synthetic
            self.sources = start.sources
            self.folder = Path(start.folder)
            self.export_fn = start.export
            self.cache = LayerCache()
            self._results = {}
            self.current_name = ""
            try:
                self.result_of(start.study)  # the first summary: a failure keeps the old study
            except BaseException:
                for k, v in was.items():
                    setattr(self, k, v)
                raise

    def start_upload(self, stored: Any, opener: Callable[..., StudyStart]) -> Job:
        """Read, check and route an upload in the background; switch to it when it is good.

        ``stored`` is a :class:`maps.studio.upload.Upload`; a refused one is removed and the
        current study stays as it was.
        """
        import shutil

        from layers.errors import InputError

        with self.lock:
            if self.uploading:
                msg = "upload: another study is being read; wait for it to finish"
                raise StudioError(msg, status=409)
            self.uploading = True
        job = self._job("upload")

        def work() -> dict[str, Any]:
            try:
                start = opener(stored, job.steps.append)
                job.steps.append("summary")
                with self.lock:
                    self.switch(start)
            except InputError as err:
                shutil.rmtree(stored.folder, ignore_errors=True)
                raise StudioError(stored.as_shown(str(err))) from err
            except BaseException:
                shutil.rmtree(stored.folder, ignore_errors=True)
                raise
            finally:
                self.uploading = False
            return {
                "study": stored.id,
                "title": self.title,
                "folder": f"uploads/{stored.id}",
                "files": {s.path.name: s.display for s in stored.files()},
            }

        self._run(job, work)
        return job

    # --------------------------------------------------------------------------- reading

    @property
    def study(self) -> Study:
        """The scenario being edited."""
        return self.history[self.pos]

    def result_of(
        self, study: Study, *, drawing: bool = True
    ) -> tuple[StudyResult, dict[str, Any]]:
        """The batch result and summary document of a scenario (kept for the recent ones).

        ``drawing=False`` is the numbers only (no outlines, loads or polygons): what an edit
        answers with, in tens of milliseconds; the map's layers ask for the drawing after.
        """
        key = (id(study), drawing)
        hit = self._results.get(key)
        if hit is not None and hit[0] is study:
            return hit[1], hit[2]
        result = live_result(
            study,
            title=self.title,
            synthetic=self.synthetic,
            sources=self.sources,
            cache=self.cache,
            drawing=drawing,
        )
        summary = summary_dict(result)
        summary.pop("timings_s", None)  # a live scenario has no stage timings
        if len(self._results) > 32:
            self._results.pop(next(iter(self._results)))
        self._results[key] = (study, result, summary)
        return result, summary

    def summary(self) -> dict[str, Any]:
        """The current scenario's summary.json document."""
        with self.lock:
            return self.result_of(self.study, drawing=False)[1]

    def state(self) -> dict[str, Any]:
        """The scenario's edit state for the page: undo/redo, layer settings, its name."""
        s = self.study
        return {
            "can_undo": self.pos > 0,
            "can_redo": self.pos < len(self.history) - 1,
            "name": self.current_name,
            "layers": {
                k: {
                    "label_zh": ly.spec.label_zh,
                    "label_en": ly.spec.label_en,
                    "speed_kmh": ly.spec.speed_kmh,
                    "thresholds_min": list(ly.spec.thresholds_min),
                    "headline_min": ly.spec.headline_min,
                }
                for k, ly in s.layers.items()
            },
        }

    def kind(self, value: Any) -> str:
        """A layer kind of this study, or a 400 naming the ones there are."""
        if not isinstance(value, str) or value not in self.study.layers:
            msg = (
                f"layer: '{value}' is not a facility layer of this study; use one of "
                + ", ".join(self.study.layers)
            )
            raise StudioError(msg)
        return value

    def find(self, facility_id: str, layer: str | None = None) -> str:
        """The layer holding a facility id (ids are unique per layer; ?layer= settles a tie)."""
        if layer is not None:
            kind = self.kind(layer)
            if facility_id not in set(self.study.layers[kind].ids):
                msg = f"id: no facility '{facility_id}' in layer '{kind}'"
                raise StudioError(msg, status=404)
            return kind
        kinds = [k for k, ly in self.study.layers.items() if facility_id in set(ly.ids)]
        if not kinds:
            msg = f"id: no facility '{facility_id}'; list them with GET /api/facilities?layer=KIND"
            raise StudioError(
                msg,
                status=404,
            )
        if len(kinds) > 1:
            msg = (
                f"id: '{facility_id}' is in layers {', '.join(kinds)}; add "
                f"?layer={kinds[0]} to say which"
            )
            raise StudioError(
                msg,
                status=409,
            )
        return kinds[0]

    def facilities_geojson(self, kind: str) -> dict[str, Any]:
        """The layer's facilities as a GeoJSON FeatureCollection with ids (WGS84)."""
        ly = self.study.layers[kind]
        unsnapped = ly.snap.unsnapped
        feats = []
        for i, (fid, row) in enumerate(zip(ly.ids, ly.facilities.itertuples(), strict=True)):
            g = getattr(row, ly.facilities.geometry.name)
            cap = float(row.capacity) if "capacity" in ly.facilities else math.nan
            feats.append(
                {
                    "type": "Feature",
                    "id": str(fid),
                    "geometry": {"type": "Point", "coordinates": [round(g.x, 7), round(g.y, 7)]},
                    "properties": {
                        "id": str(fid),
                        "layer": kind,
                        "name": str(row.name),
                        "capacity": cap if math.isfinite(cap) else None,
                        "snapped": not bool(unsnapped[i]),
                    },
                }
            )
        return {"type": "FeatureCollection", "layer": kind, "features": feats}

    # ---------------------------------------------------------------------------- edits

    def _push(self, study: Study) -> None:
        # computed before the scenario changes: a failure leaves it as it was
        self.result_of(study, drawing=False)
        del self.history[self.pos + 1 :]
        self.history.append(study)
        self.pos += 1
        if len(self.history) > 200:  # the first entry (the plan's scenario) always stays
            del self.history[1]
            self.pos -= 1

    def add(self, kind: str, *, lon: float, lat: float, name: str) -> str:
        """Add a site; returns its id."""
        with self.lock:
            self._inside(lon, lat)
            study, fid = self.study.add_facility(kind, lon=lon, lat=lat, name=name)
            self._push(study)
            return fid

    def move(self, facility_id: str, *, lon: float, lat: float, layer: str | None) -> None:
        """Move a site."""
        with self.lock:
            kind = self.find(facility_id, layer)
            self._inside(lon, lat)
            self._push(self.study.move_facility(kind, facility_id, lon=lon, lat=lat))

    def remove(self, facility_id: str, *, layer: str | None) -> None:
        """Remove a site."""
        with self.lock:
            kind = self.find(facility_id, layer)
            self._push(self.study.remove_facility(kind, facility_id))

    def set_layer(self, kind: str, *, speed_kmh: Any = None, minutes: Any = None) -> None:
        """Change a layer's walking speed and/or minutes (one history step)."""
        from layers.errors import InputError

        with self.lock:
            study = self.study
            try:
                if speed_kmh is not None:
                    study = study.with_speed(kind, _number(speed_kmh, "speed_kmh", "4.5"))
                if minutes is not None:
                    if not isinstance(minutes, list) or not minutes:
                        msg = "minutes: send a list of minutes, e.g. [5, 10, 15]"
                        raise StudioError(msg)
                    values = [_number(m, "minutes", "15") for m in minutes]
                    study = study.with_thresholds(kind, sorted(set(values)))
            except InputError as err:
                msg = f"{'speed_kmh' if speed_kmh is not None else 'minutes'}: {err}"
                raise StudioError(msg) from err
            if study is not self.study:
                self._push(study)

    def undo(self) -> None:
        """One step back."""
        with self.lock:
            if self.pos == 0:
                msg = "undo: nothing to undo"
                raise StudioError(msg, status=409)
            self.pos -= 1

    def redo(self) -> None:
        """One step forward."""
        with self.lock:
            if self.pos >= len(self.history) - 1:
                msg = "redo: nothing to redo"
                raise StudioError(msg, status=409)
            self.pos += 1

    def _inside(self, lon: float, lat: float) -> None:
        x0, y0, x1, y1 = self.study.net.extent_wgs84().bounds
        if not (x0 <= lon <= x1 and y0 <= lat <= y1):
            msg = (
                f"lon/lat: ({lon:.5f}, {lat:.5f}) is outside the study's street network "
                f"(lon {x0:.4f}..{x1:.4f}, lat {y0:.4f}..{y1:.4f}); place the site on the map"
            )
            raise StudioError(msg)

    # ------------------------------------------------------------------------ map layers

    def base_layers(self) -> dict[str, Any]:
        """What stays the same through edits: streets, residents, 街道 polygons (WGS84)."""
        result, _ = self.result_of(self.history[0])
        streets = result.streets
        lines = (
            []
            if streets is None
            else [np.round(np.asarray(g.coords), 6).tolist() for g in streets.geometry]
        )
        res = self.study.residents
        pts = res.points_ll
        areas = result.areas[result.areas["level"] != "community"]
        return {
            "streets": lines,
            "residents": {
                "lon": np.round(pts.x.to_numpy(), 6).tolist(),
                "lat": np.round(pts.y.to_numpy(), 6).tolist(),
                "population": result.residents["population"].astype(float).round(1).tolist(),
            },
            "areas": json.loads(areas[["area", "level", "geometry"]].to_json()),
            "bounds": list(self.study.net.extent_wgs84().bounds),
        }

    def map_layer(self, kind: str) -> dict[str, Any]:
        """One layer's live drawing: minutes per resident and per street, gaps, 街道 rates."""
        with self.lock:
            result, _ = self.result_of(self.study)
        col = f"minutes_{kind}"
        gaps = result.gaps[result.gaps["kind"] == kind]
        areas = result.areas[result.areas["level"] != "community"]
        return {
            "layer": kind,
            "resident_minutes": _finite(result.residents[col]),
            "street_minutes": [] if result.streets is None else _finite(result.streets[col]),
            "gaps": json.loads(
                gaps[["gap_id", "uncovered_population", "area", "geometry"]].to_json()
            ),
            "area_coverage": {
                str(a): json_number(v)
                for a, v in zip(areas["area"], areas[f"coverage_{kind}"], strict=True)
            },
        }

    # ------------------------------------------------------------------------ suggestions

    def start_suggest(self, kind: str, *, model: Any, p: Any) -> Job:
        """Run MCLP, LSCP or p-median for the current scenario in the background."""
        if model not in MODELS:
            msg = f"model: '{model}' is not one of {', '.join(MODELS)}"
            raise StudioError(msg)
        n = 0
        if model != "lscp":
            if isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 50:
                msg = "p: send the number of new sites, a whole number 1-50"
                raise StudioError(msg)
            n = p
        study = self.study
        job = self._job("suggest")

        def work() -> dict[str, Any]:
            layer = study.layers[kind]
            opts = replace(study.options, model=model)
            job.steps.append("gaps")
            zones = layer_gaps(study.net, study.residents, layer)
            job.steps.append("candidates")
            cands = layer_candidates(
                study.net,
                study.inputs,
                study.residents,
                layer,
                zones,
                horizon_m=layer_horizon_m(layer.spec, ()),
                opts=opts,
            )
            if len(cands) == 0:
                msg = "layer: no candidate sites (no gap zones, no candidates file)"
                raise StudioError(msg)
            if model != "lscp" and n > len(cands):
                msg = f"p: only {len(cands)} candidate sites; ask for at most {len(cands)}"
                raise StudioError(msg)
            job.steps.append("solving")

            def first(sol: Any) -> None:  # the heuristic's answer and bound, shown while proving
                if model == "lscp" or sol.optimal:
                    return
                job.first = {
                    "sites": len(sol.selected),
                    "objective": json_number(sol.objective),
                    "bound": json_number(sol.bound),
                    "gap": json_number(sol.gap),
                }
                job.steps.append("first_answer")

            got = suggest_sites(
                study.net,
                study.inputs,
                study.residents,
                layer,
                cands,
                p=n,
                opts=opts,
                on_incumbent=first,
            )
            return {
                "layer": kind,
                "model": model,
                "coverage_rate_before": json_number(got.run.coverage_rate_before),
                "coverage_rate_after": json_number(got.run.coverage_rate_after),
                "optimal": bool(got.run.optimal),
                "sites": [
                    {
                        "rank": r["rank"],
                        "site_id": r["site_id"],
                        "name": r["name"],
                        "area": r["area"],
                        "lon": round(float(r["geometry"].x), 7),
                        "lat": round(float(r["geometry"].y), 7),
                        "added_population": json_number(r["added_population"]),
                    }
                    for r in got.rows
                ],
            }

        self._run(job, work)
        return job

    def _job(self, kind: str) -> Job:
        job = Job(id=uuid.uuid4().hex[:12], kind=kind)
        self.jobs[job.id] = job
        return job

    def _run(self, job: Job, work: Callable[[], Any]) -> None:
        def target() -> None:
            try:
                job.result = work()
                job.steps.append("done")
                job.state = "done"
            except Exception as err:  # shown in the page as one line
                from layers.errors import InputError

                if not isinstance(err, StudioError | InputError):
                    log.exception("studio job %s failed", job.kind)
                job.error = str(err).splitlines()[0] if str(err) else type(err).__name__
                job.state = "failed"

        threading.Thread(target=target, name=f"studio-{job.kind}", daemon=True).start()

    # -------------------------------------------------------------------------- scenarios

    @property
    def scenario_dir(self) -> Path:
        """Where saved scenarios live (created on the first save)."""
        return self.folder / "scenarios"

    def _scenario_files(self, name: str) -> tuple[Path, Path]:
        base = self.scenario_dir
        return base / f"{name}.geojson", base / f"{name}.json"

    def save(self, name: Any) -> dict[str, Any]:
        """Save the current scenario: facilities as GeoJSON, settings as JSON (atomic)."""
        name = check_name(name)
        with self.lock:
            study = self.study
            geo_path, meta_path = self._scenario_files(name)
            self.scenario_dir.mkdir(parents=True, exist_ok=True)
            frames = [
                ly.facilities[
                    ["facility_id", "kind", "name", "capacity", ly.facilities.geometry.name]
                ]
                for ly in study.layers.values()
            ]
            fac = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=4326)
            with atomic_path(geo_path) as tmp:
                tmp.write_text(fac.to_json(drop_id=True, na="null"), encoding="utf-8")
            meta = {
                "name": name,
                "title": self.title,
                "facilities": geo_path.name,
                "layers": self.state()["layers"],
                "saved": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
            with atomic_path(meta_path) as tmp:
                tmp.write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
            self.current_name = name
            return {"name": name, "files": [geo_path.name, meta_path.name]}

    def scenarios(self) -> list[dict[str, Any]]:
        """The saved scenarios, newest first."""
        out = []
        for meta in sorted(self.scenario_dir.glob("*.json"), key=lambda p: -p.stat().st_mtime):
            try:
                doc = json.loads(meta.read_text(encoding="utf-8"))
                out.append({"name": meta.stem, "saved": str(doc.get("saved", ""))})
            except (OSError, ValueError):
                log.warning("unreadable scenario file %s", meta)
        return out

    def load(self, name: Any) -> Study:
        """A saved scenario routed on this study's network (same residents, areas, options)."""
        name = check_name(name)
        geo_path, meta_path = self._scenario_files(name)
        if not meta_path.is_file() or not geo_path.is_file():
            msg = f"name: no saved scenario '{name}'; list them with GET /api/scenarios"
            raise StudioError(msg, status=404)
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        fac = gpd.read_file(geo_path)
        base = self.history[0]
        specs = dict(base.inputs.specs)
        for kind, st in meta.get("layers", {}).items():
            if kind in specs:
                specs[kind] = (
                    specs[kind]
                    .with_speed(float(st["speed_kmh"]))
                    .with_thresholds(tuple(float(m) for m in st["thresholds_min"]))
                )
        facilities = {}
        for kind, ly in base.layers.items():
            part = fac[fac["kind"] == kind].reset_index(drop=True)
            if part.geometry.name != ly.facilities.geometry.name:
                part = part.rename_geometry(ly.facilities.geometry.name)
            if "capacity" not in part:
                part["capacity"] = np.nan
            part["capacity"] = pd.to_numeric(part["capacity"], errors="coerce").astype(float)
            part["facility_id"] = part["facility_id"].astype(str)
            part["name"] = part["name"].fillna("").astype(str)
            facilities[kind] = part
        inputs = replace(base.inputs, facilities=facilities, specs=specs)
        return Study.route(base.net, inputs, base.options)

    def open(self, name: Any) -> None:
        """Make a saved scenario the current one (undo goes back to what was open)."""
        study = self.load(name)
        with self.lock:
            self._push(study)
            self.current_name = check_name(name)

    def compare(self, a: Any, b: Any) -> dict[str, Any]:
        """Two scenarios side by side ('' = the current one) and who gains or loses access."""
        sa = self.study if not a else self.load(a)
        sb = self.study if not b else self.load(b)
        with self.lock:
            _, da = self.result_of(sa, drawing=False)
            _, db = self.result_of(sb, drawing=False)
        pts = sa.residents.points_ll
        changes: dict[str, Any] = {}
        for kind in sa.layers:
            was = sa.covered(kind)
            now = sb.covered(kind)
            w = sa.layers[kind].weight
            gain, lose = now & ~was & (w > 0), was & ~now & (w > 0)
            changes[kind] = {
                "gain": _points(pts, gain, w),
                "lose": _points(pts, lose, w),
                "gain_population": float(w[gain].sum()),
                "lose_population": float(w[lose].sum()),
            }
        return {"a": a or "", "b": b or "", "summary_a": da, "summary_b": db, "changes": changes}

    def start_export(self, name: Any) -> Job:
        """The full batch output of the current scenario, in ``exports/NAME`` (background)."""
        name = check_name(name)
        if self.export_fn is None:
            msg = "export: this studio was started without an export writer"
            raise StudioError(msg, status=409)
        target = self.folder / "exports" / name
        if target.exists():
            msg = f"name: exports/{name} exists already; choose another name"
            raise StudioError(msg, status=409)
        inputs = self.study.edited_inputs()
        job = self._job("export")
        fn = self.export_fn

        def work() -> dict[str, Any]:
            target.parent.mkdir(parents=True, exist_ok=True)
            fn(inputs, target, job.steps.append)
            return {"folder": f"exports/{name}", "files": sorted(p.name for p in target.iterdir())}

        self._run(job, work)
        return job


def _number(value: Any, name: str, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        msg = f"{name}: send a number, e.g. {example}"
        raise StudioError(msg)
    return float(value)


def _finite(values: pd.Series) -> list[float | None]:
    a = values.to_numpy(dtype=float)
    return [None if not math.isfinite(v) else round(v, 2) for v in a.tolist()]


def _points(pts: gpd.GeoSeries, mask: np.ndarray, w: np.ndarray) -> list[list[float]]:
    idx = np.flatnonzero(mask)
    return [
        [round(float(pts.iloc[i].x), 6), round(float(pts.iloc[i].y), 6), float(w[i])] for i in idx
    ]
