"""``aekit serve``: a table, time-series or image detector as an HTTP scoring service (FastAPI + uvicorn).

- ``POST /v1/score``: ``{"records": [{column: value, ...}, ...]}`` (or the list alone, as
  pandas' ``to_json(orient="records")`` writes it, or one record alone) or a CSV body
  (``Content-Type: text/csv``), or a form (``multipart/form-data``) holding one such file ->
  ``{"model": sha, "results": [{"score", "is_anomaly", "top_features"}, ...]}`` in request
  order: the scores ``aekit anomaly score`` gives.
- A time-series model scores the request's rows as a table of their own (each series, by
  the model's ID column, in the order sent): the answer is what ``aekit anomaly score``
  writes for a file of those rows. Each result has ``top_channels``; the answer adds
  ``notes`` (a series too short to score, whose scores are null; gaps in time; filled
  values). Queued requests share a pass over their windows, each scored as its own table.
  A client watching a stream sends each new row with the ``window - 1`` rows
  before it (the model card's ``series.window``): the last row's score is then the one the
  whole stream, cut there, gives it. Nothing is kept between requests, so any number of
  replicas serve alike.
- An image model takes an image file as the body (``Content-Type: image/png``, ``image/jpeg``,
  ...), a form of image files, or ``{"images": [base64 file, ...]}``; each result has ``score``, ``is_anomaly`` and
  ``peak``, where its anomaly map is highest (``x``, ``y`` in the image's own pixels, as
  viewers show it); with ``?heatmap=true``, also ``heatmap``, a base64 PNG of the image
  beside its anomaly map. Concurrent requests are scored in one pass, as table rows are.
- ``GET /v1/model`` (the model card), ``GET /healthz``, ``GET /readyz``, ``GET /metrics``.

How it holds up:

- **Micro-batching**: a request's rows are validated on the event loop, then queued; one
  scoring thread takes everything queued at once and scores it in one pass. Under no load
  a request is scored at once (no waiting for company); under load the passes grow, so
  throughput grows with the number of clients.
- **Hot reload**: the model directory is polled; a new model written at the same path
  (``save_model`` swaps folders atomically) is loaded beside the old one and swapped in by
  one assignment: requests already queued finish on the model that validated them, and
  none is dropped. A new model that fails to load is refused and logged; the old one serves.
  Both files of the folder are watched; while the model on disk is one that was refused,
  ``/readyz`` answers 503 (the old model still scores), so an orchestrator sees it.
- **Security**: with ``AEKIT_API_KEY`` set, every ``/v1/`` request needs ``X-API-Key``
  (compared in constant time, 401 otherwise); an empty key, or one that HTTP could not carry
  (spaces at its ends, control or non-ASCII characters), is refused at start, and the start
  line says whether a key is required. Bodies over ``max_body_bytes`` and requests over
  ``max_rows`` rows are refused with 413; a body that has not arrived within
  ``body_timeout`` seconds with 408, and a connection whose headers have not, is closed; a
  client gone mid-body is counted as 499, not as a failure. Bad input is a 4xx whose
  message names the field; an unexpected failure is a 500 with no traceback (the traceback
  goes to the log). The card never shows paths on disk.
"""
from __future__ import annotations

import asyncio
import base64
import gc
import hmac
import logging
import os
import re
import socket
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import torch
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from ..._version import __version__
from ...errors import AekitError, DataError, first_line
from ...plots import heatmap_panel, png_bytes
from . import read_detector
from .metrics import ServiceMetrics
from .records import (ImageRequest, base64_files, csv_frame, form_files, image_request, records_to_inputs,
                      records_to_series, split_records)
from .report import top_feature_records

log = logging.getLogger("aekit.serve")

API_KEY_ENV = "AEKIT_API_KEY"
API_KEY_HEADER = "x-api-key"
MAX_ROWS = 10_000
MAX_BODY_BYTES = 16 * 1024 * 1024
RELOAD_INTERVAL = 2.0  # seconds between looks at the model directory
MAX_BATCH_ROWS = 16_384  # rows per scoring pass (the detector's own block size)
BODY_TIMEOUT = 10.0  # seconds for a request body to arrive whole (stalled uploads hold no slot)
MAX_CONNECTIONS = 100  # open connections at once; more are answered 503
IDLE_TIMEOUT = 5  # seconds an idle keep-alive connection is kept
CLIENT_GONE = 499  # the status counted for a client that closed before sending its body (as nginx)
ENDPOINTS = ("/v1/score", "/v1/model", "/healthz", "/readyz", "/metrics")
DATA_ROW = re.compile(r"\bdata row (\d+)")
NON_JSON_NUMBER = re.compile(rb"(?<![\w\"])-?(?:NaN|Infinity)\b")  # Python's json.dumps writes them


class Problem(Exception):
    """A request the service refuses: an HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


# ---------------------------------------------------------------------- the model
SERVED_KINDS = ("table", "series", "image")


@dataclass(frozen=True)
class ServedModel:
    detector: Any
    card: dict[str, Any]
    sha: str

    @property
    def kind(self) -> str:
        """What the model reads: ``table``, ``series`` or ``image``."""
        return self.detector.adapter_.kind


def model_card(det: Any, config: dict[str, Any]) -> dict[str, Any]:
    """What a caller needs to know of the model being served (never where it lies on disk)."""
    scores = det.decision_scores_
    scored = scores[~np.isnan(scores)]  # a series shorter than a window is not scored in training
    card: dict[str, Any] = {"kind": config["kind"]}
    if det.adapter_.kind == "series":
        adapter = det.series_adapter_
        card["columns"] = [{"name": c, "type": "numeric"} for c in adapter.channels_]
        card["series"] = {"time_col": adapter.time_col, "id_col": adapter.id_col, "window": det.window_,
                          "impute": adapter.impute, "training_series": adapter.n_series_}
    elif det.adapter_.kind == "image":
        card["image"] = det.image_spec_.to_dict()  # what every image is converted to: channels, height, width
    else:
        pre = det.preprocessor_
        card["columns"] = [{"name": c, "type": "categorical", "categories": list(pre.categories_[c])}
                           if c in pre.categories_ else {"name": c, "type": "numeric"} for c in pre.columns_]
    return {
        **card,
        "threshold": det.threshold_, "threshold_rule": det.threshold_rule_.describe(),
        "versions": {"aekit_trained": config.get("aekit_version"), "aekit_serving": __version__,
                     "model_format": config.get("format_version")},
        "weights_sha256": config["weights_sha256"], "config_sha256": config["config_sha256"],
        "training": {"rows": len(scores), "flagged_share": float(np.mean(det.labels_)),
                     "score_quantiles": {f"{q:g}": float(np.quantile(scored, q)) for q in (0.5, 0.9, 0.99)},
                     "networks": config.get("state", {}).get("training", [])},
        "params": config.get("params", {}),
        "loaded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def load_served(path: Path) -> ServedModel:
    det, config = read_detector(path)
    if det.adapter_.kind not in SERVED_KINDS:
        raise DataError(f"{path} was trained on {det.adapter_.describe()}; the service scores table rows, time "
                        "series and images")
    return ServedModel(det, model_card(det, config), config["weights_sha256"])


class ModelSlot:
    """The model being served, and the watch on its directory (``refresh``). ``refused`` holds
    why the model now on disk was not loaded (None while the served model is the one there)."""

    FILES = ("config.json", "model.safetensors")

    def __init__(self, path: str | os.PathLike[str], metrics: ServiceMetrics) -> None:
        self.path = Path(path)
        self.metrics = metrics
        self._seen = self._identity()
        self.current = load_served(self.path)
        self.refused: str | None = None

    def _identity(self) -> tuple[Any, ...] | None:
        """Changes whenever anything is written at the path: the folder swapped, or either
        file replaced or rewritten in place."""
        try:
            stats = [self.path.stat()] + [(self.path / f).stat() for f in self.FILES]
        except OSError:
            return None
        return tuple((st.st_ino, st.st_mtime_ns, st.st_size) for st in stats)

    def refresh(self) -> bool:
        """Load the model at the path if it changed; True if a new model now serves. A model
        that fails to load is refused (logged, and ``refused`` says why) and not tried again
        until it changes."""
        identity = self._identity()
        if identity == self._seen:
            return False
        self._seen = identity
        try:
            new = load_served(self.path)
        except (AekitError, OSError) as exc:
            self.refused = first_line(exc)
            self.metrics.reload("refused")
            log.error("refused the new model at %s: %s; still serving %s", self.path, exc, self.current.sha[:12])
            return False
        self.refused = None
        if new.sha == self.current.sha and new.card["config_sha256"] == self.current.card["config_sha256"]:
            return False
        old, self.current = self.current, new
        self.metrics.reload("loaded")
        # the weights' digest alone would read "(was the same)" after `aekit anomaly threshold`
        log.info("now serving model %s, threshold %.4g (was %s, threshold %.4g)", new.sha[:12],
                 new.card["threshold"], old.sha[:12], old.card["threshold"])
        return True


# ---------------------------------------------------------------------- micro-batching
@dataclass
class _Job:
    served: ServedModel
    inputs: Any  # a table model's input tensor; a series model's table; an image model's ImageRequest
    future: asyncio.Future = field(repr=False)


@dataclass
class Scored:
    """One request's scores, each row's parts by column (or channel; an image's anomaly map),
    and notes (series only)."""

    scores: np.ndarray
    contrib: np.ndarray
    notes: list[str] = field(default_factory=list)


def _score_jobs(jobs: list[_Job]) -> list[Scored | AekitError]:
    """Score queued requests in one pass per model (a reload may leave two in a batch); a
    series model's requests each as a table of its own series (``score_requests``), so that
    one request's bad times fail that request alone."""
    results: list[Any] = [None] * len(jobs)
    by_model: dict[int, list[int]] = {}
    for i, job in enumerate(jobs):
        by_model.setdefault(id(job.served), []).append(i)
    for members in by_model.values():
        served = jobs[members[0]].served
        if served.kind == "series":
            scored = served.detector.score_requests([jobs[i].inputs for i in members])
            for i, result in zip(members, scored, strict=True):
                results[i] = result if isinstance(result, AekitError) else Scored(*result)
            continue
        inputs = [jobs[i].inputs for i in members]
        if served.kind == "image":
            images = [x.images for x in inputs]
            scores, contrib = served.detector.score_maps(np.concatenate(images) if len(images) > 1 else images[0])
        else:
            scores, contrib = served.detector.score_explain_inputs(torch.cat(inputs) if len(inputs) > 1 else inputs[0])
        start = 0
        for i, x in zip(members, inputs, strict=True):
            results[i] = Scored(scores[start:start + len(x)], contrib[start:start + len(x)])
            start += len(x)
    return results


class MicroBatcher:
    """One scoring thread fed by a queue: whatever waits when it is free is one pass."""

    def __init__(self, metrics: ServiceMetrics, max_rows: int = MAX_BATCH_ROWS) -> None:
        self.metrics, self.max_rows = metrics, max_rows
        self.queue: asyncio.Queue[_Job] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="aekit-score")
        self.running = False

    async def score(self, served: ServedModel, inputs: Any) -> Scored:
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(_Job(served, inputs, future))
        return await future

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.running = True
        try:
            while True:
                jobs = [await self.queue.get()]
                rows = len(jobs[0].inputs)
                while rows < self.max_rows and not self.queue.empty():
                    jobs.append(self.queue.get_nowait())
                    rows += len(jobs[-1].inputs)
                self.metrics.batch(rows)
                try:
                    results = await loop.run_in_executor(self.executor, _score_jobs, jobs)
                except Exception as exc:  # noqa: BLE001 - handed to each waiting request
                    for job in jobs:
                        if not job.future.done():
                            job.future.set_exception(exc)
                    continue
                for job, result in zip(jobs, results, strict=True):
                    if job.future.done():  # a client that went away cancelled its future
                        continue
                    if isinstance(result, Exception):
                        job.future.set_exception(result)
                    else:
                        job.future.set_result(result)
        finally:
            self.running = False
            self.executor.shutdown(wait=False)


# ---------------------------------------------------------------------- the app
@dataclass
class ServiceOptions:
    max_rows: int = MAX_ROWS
    max_body_bytes: int = MAX_BODY_BYTES
    top_k: int = 3
    reload_interval: float = RELOAD_INTERVAL
    body_timeout: float = BODY_TIMEOUT
    api_key: str | None = None  # default: the AEKIT_API_KEY environment variable


def api_key_from(given: str | None) -> str | None:
    """The key every ``/v1/`` request must carry: ``given``, else ``AEKIT_API_KEY``; None when
    neither is set. A key that could never be sent is refused here, at start."""
    key = given if given is not None else os.environ.get(API_KEY_ENV)
    if key is None:
        return None
    if not key:
        raise DataError(f"{API_KEY_ENV} is set but empty: unset it to serve without a key, or give a key")
    if key != key.strip() or not key.isascii() or not key.isprintable():
        raise DataError(f"{API_KEY_ENV} must be printable ASCII with no spaces at its ends (HTTP strips them, "
                        "so such a key could never be sent)")
    return key


def create_app(model_dir: str | os.PathLike[str], options: ServiceOptions | None = None) -> Any:
    """The FastAPI app serving the detector at ``model_dir`` (loaded now: a bad model fails
    here, before any port is opened)."""
    opts = options or ServiceOptions()
    api_key = api_key_from(opts.api_key)
    metrics = ServiceMetrics()
    slot = ModelSlot(model_dir, metrics)
    batcher = MicroBatcher(metrics)

    async def watch() -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(opts.reload_interval)
            try:
                await loop.run_in_executor(None, slot.refresh)
            except Exception:  # noqa: BLE001 - the watch must outlive any one failure
                log.exception("the model watch failed; it goes on")

    @asynccontextmanager
    async def lifespan(app: Any):  # noqa: ANN202
        tasks = [asyncio.create_task(batcher.run())]
        if opts.reload_interval > 0:
            tasks.append(asyncio.create_task(watch()))
        log.info("serving %s (model %s); API key: %s", slot.path, slot.current.sha[:12],
                 f"required (header {API_KEY_HEADER})" if api_key else f"not required ({API_KEY_ENV} is not set)")
        # what is loaded now (torch, pandas, the model) lives as long as the process: keep it
        # out of the collector's scans, which otherwise tripled the cost of building the
        # answers' many small objects
        gc.freeze()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    app = FastAPI(title="aekit scoring service", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.slot, app.state.batcher, app.state.metrics = slot, batcher, metrics

    @app.exception_handler(Problem)
    async def problem(request: Request, exc: Problem) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def no_route(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # a wrong path or method answers in the service's own shape, with the way to the right one
        return JSONResponse({"error": f"{request.method} {request.url.path}: {exc.detail}; this service answers "
                                      "POST /v1/score, GET /v1/model, /healthz, /readyz and /metrics"},
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def failure(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s", request.url.path)
        return JSONResponse({"error": "internal error (details are in the server log)"}, status_code=500)

    @app.post("/v1/score")
    async def score(request: Request) -> Response:
        body = _decoded(await _read_body(request, opts.max_body_bytes, opts.body_timeout),
                        request.headers.get("content-encoding", ""), opts.max_body_bytes)
        served = slot.current
        content_type = request.headers.get("content-type", "")
        if served.kind != "image" and _media(content_type) == FORM:
            content_type, body = _form_table(content_type, body)
        heatmaps = _heatmap_option(request.query_params.get("heatmap"), served.kind)
        if served.kind == "image":  # decoding a large photo on the event loop would stall every other request
            inputs = await asyncio.to_thread(_inputs, served, content_type, body, opts.max_rows)
        else:
            inputs = _inputs(served, content_type, body, opts.max_rows)
        try:
            scored = await batcher.score(served, inputs)
        except AekitError as exc:
            raise Problem(422, _as_sent(str(exc), content_type)) from None
        if served.kind == "image":  # heat maps are PNGs to encode: off the event loop too
            answer = await asyncio.to_thread(_image_answer, served, scored, inputs, heatmaps)
        elif served.kind == "series":
            answer = _series_answer(served, scored, opts.top_k, content_type)
        else:
            answer = _table_answer(served, scored, opts.top_k)
        metrics.scored(len(scored.scores), int((scored.scores > served.detector.threshold_).sum()))
        return Response(orjson.dumps(answer), media_type="application/json")

    @app.get("/v1/model")
    async def model() -> Response:
        return Response(orjson.dumps(slot.current.card), media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if not batcher.running:
            return JSONResponse({"status": "starting"}, status_code=503)
        if slot.refused is not None:  # still scoring with the old model, but the one on disk is bad
            return JSONResponse({"status": "model refused", "error": slot.refused, "model": slot.current.sha},
                                status_code=503)
        return JSONResponse({"status": "ready", "model": slot.current.sha})

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(slot.current.sha), media_type="text/plain; version=0.0.4")

    return _Guard(app, metrics, api_key)


def _as_sent(message: str, content_type: str) -> str:
    """A scoring error or note about a JSON request's rows, naming them as sent: the reader's
    "data row 6" (of a table or file) is ``records[5]``, the 6th record. (A CSV body's data
    rows are its own.)"""
    if _media(content_type) == "text/csv":
        return message
    return DATA_ROW.sub(lambda m: f"records[{int(m.group(1)) - 1}]", message)


def _table_answer(served: ServedModel, scored: Scored, top_k: int) -> dict[str, Any]:
    det = served.detector
    return {"model": served.sha,
            "results": _row_results(scored, det.threshold_, det.explained_columns_, top_k, "top_features")}


def _series_answer(served: ServedModel, scored: Scored, top_k: int, content_type: str) -> dict[str, Any]:
    """A series model's answer: each row's result, and the notes, naming rows as sent."""
    det = served.detector
    return {"model": served.sha, "results": _row_results(scored, det.threshold_, det.channels_, top_k, "top_channels"),
            "notes": [_as_sent(note, content_type) for note in scored.notes]}


def _row_results(scored: Scored, threshold: float, columns: list[str], top_k: int, key: str) -> list[dict[str, Any]]:
    """Each row's ``score``, ``is_anomaly`` and its top columns under ``key``. A row not scored
    (a series too short for a window: NaN) has a null score, is not flagged and has no top
    columns."""
    unscored = np.isnan(scored.scores)
    flagged = scored.scores > threshold  # False where NaN
    contrib = np.where(unscored[:, None], 0.0, scored.contrib) if unscored.any() else scored.contrib
    tops = top_feature_records(contrib, columns, top_k)
    for i in np.flatnonzero(unscored):
        tops[i] = []
    # orjson writes NaN as null
    return [{"score": s, "is_anomaly": f, key: t}
            for s, f, t in zip(scored.scores.tolist(), flagged.tolist(), tops, strict=True)]


def _heatmap_option(value: str | None, kind: str) -> bool:
    """``?heatmap=true``: each image's answer carries its heat map (image models only)."""
    if value is None:
        return False
    if value.lower() not in ("true", "false", "1", "0"):
        raise Problem(400, f"heatmap must be true or false, got {value!r}")
    if kind != "image" and value.lower() in ("true", "1"):
        raise Problem(422, f"heatmap: only an image model draws heat maps (this model reads {kind} rows)")
    return value.lower() in ("true", "1")


def _image_answer(served: ServedModel, scored: Scored, request: ImageRequest, heatmaps: bool = False
                  ) -> dict[str, Any]:
    """An image model's answer: each image's score, flag and the peak of its anomaly map, in
    the image's own pixels (the map is at the model's size); with ``heatmaps``, each image
    at the model's size beside its map, as ``aekit anomaly score --heatmaps`` draws it (a
    base64 PNG)."""
    maps = scored.contrib
    height, width = maps.shape[1:]
    rows, cols = np.divmod(maps.reshape(len(maps), -1).argmax(1), width)
    flagged = scored.scores > served.detector.threshold_
    results = [{"score": s, "is_anomaly": f,
                "peak": {"x": int((c + 0.5) * w / width), "y": int((r + 0.5) * h / height)}}
               for s, f, r, c, (w, h) in zip(scored.scores.tolist(), flagged.tolist(), rows.tolist(), cols.tolist(),
                                             request.sizes, strict=True)]
    if heatmaps:
        for result, image, heat in zip(results, request.images, maps, strict=True):
            result["heatmap"] = base64.b64encode(png_bytes(heatmap_panel(image, heat))).decode()
    return {"model": served.sha, "results": results}


def _inputs(served: ServedModel, content_type: str, body: bytes, max_rows: int) -> Any:
    """The request's rows as the detector's input (400/413/415/422 when they are not): a
    table model's input tensor; a series model's table (its times and order are read where
    it is scored); an image model's images."""
    det, series = served.detector, served.kind == "series"
    media = _media(content_type)
    if not body.strip():
        raise Problem(400, "the request body is empty")
    try:
        if served.kind == "image":
            return _image_inputs(det, content_type, body, max_rows)
        if media == "text/csv":
            frame = csv_frame(body)
            _check_rows(len(frame), max_rows)
            return frame if series else det.adapter_.transform(frame)
        if media not in ("", "application/json"):
            raise Problem(415, f"Content-Type {media!r} is not served: send application/json or text/csv (or a "
                               "form with one such file, multipart/form-data)")
        payload = _json(body)
        if isinstance(payload, list):  # pandas' to_json(orient="records"): the list alone
            payload = {"records": payload}
        elif isinstance(payload, dict) and "records" not in payload and {"columns", "data"} <= set(payload):
            payload = {"records": split_records(payload)}  # pandas' to_json(orient="split"), compact
        elif _one_record(payload):  # {"amount": 12.5, "merchant": "fuel"}: one row, as a client sends one
            payload = {"records": [payload]}
        if not isinstance(payload, dict) or "records" not in payload:
            raise Problem(422, "the body must be a JSON object with a 'records' list, that list alone, one "
                               "record (an object of column values), or 'columns' and 'data' lists (pandas' "
                               "orient='split')")
        records = payload["records"]
        if isinstance(records, list):
            _check_rows(len(records), max_rows)
        return records_to_series(det, records) if series else records_to_inputs(det, records)
    except AekitError as exc:
        raise Problem(422, str(exc)) from None


def _image_inputs(det: Any, content_type: str, body: bytes, max_images: int) -> ImageRequest:
    """An image file as the body, a form of image files, or ``{"images": [base64 file, ...]}``."""
    spec, media = det.image_spec_, _media(content_type)
    if media.startswith("image/"):
        return image_request(spec, [body], ["the request body"])
    if media == FORM:
        files = form_files(content_type, body)
        _check_rows(len(files), max_images, "images")
        return image_request(spec, [f.data for f in files], [f"the form's file {f.name!r}" for f in files])
    if media not in ("", "application/json"):
        raise Problem(415, f"Content-Type {media!r} is not served: send an image file (image/png, image/jpeg, "
                           "...), a form of them (multipart/form-data) or application/json")
    payload = _json(body)
    if not isinstance(payload, dict) or "images" not in payload:
        raise Problem(422, "the body must be an image file, or a JSON object with an 'images' list of "
                           "base64-encoded image files")
    files = base64_files(payload["images"])
    _check_rows(len(files), max_images, "images")
    return image_request(spec, files, [f"images[{i}]" for i in range(len(files))])


FORM = "multipart/form-data"  # what curl -F, an HTML form and requests.post(files=...) send


def _media(content_type: str) -> str:
    """A Content-Type header's media type, lower case, without its parameters."""
    return content_type.split(";", 1)[0].strip().lower()


def _form_table(content_type: str, body: bytes) -> tuple[str, bytes]:
    """A table or series model's form: its one file as the body it would have been sent as
    (``application/json`` where the file says so, else ``text/csv``), so its rows are named
    as a file's rows are."""
    try:
        files = form_files(content_type, body)
    except DataError as exc:
        raise Problem(422, str(exc)) from None
    if len(files) > 1:
        raise Problem(422, f"the form holds {len(files)} files; send one table (a CSV or JSON file) per request")
    (file,) = files
    if not file.data.strip():
        raise Problem(400, f"the form's file {file.name!r} is empty")
    is_json = file.media == "application/json" or file.name.lower().endswith(".json")
    return ("application/json" if is_json else "text/csv"), file.data


def _one_record(payload: Any) -> bool:
    """A JSON object that is one row (column -> a value, no lists or objects in it), not the
    ``{"records": [...]}`` envelope."""
    return (isinstance(payload, dict) and bool(payload) and "records" not in payload
            and not any(isinstance(v, (list, dict)) for v in payload.values()))


def _json(body: bytes) -> Any:
    """The parsed body. Python's ``json.dumps`` (what ``requests.post(json=frame.to_dict(
    "records"))`` sends) writes a missing value as ``NaN``, which JSON lacks: read as null, as
    pandas' own ``to_json`` writes it. ``Infinity`` is refused by name."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if not NON_JSON_NUMBER.search(body):
            raise Problem(400, f"malformed JSON ({exc})") from None
    import json

    def constant(name: str) -> None:
        if name != "NaN":
            raise Problem(422, f"the JSON holds {name}, which is not a number aekit scores: send finite numbers "
                               "(null for a missing value)")

    try:
        return json.loads(body, parse_constant=constant)
    except ValueError as exc:
        raise Problem(400, f"malformed JSON ({exc})") from None


def _check_rows(n: int, max_rows: int, unit: str = "rows") -> None:
    if n > max_rows:
        raise Problem(413, f"{n} {unit} in one request; the limit is {max_rows} (--max-rows)")


async def _read_body(request: Any, limit: int, timeout: float = BODY_TIMEOUT) -> bytes:
    """The whole body within ``timeout`` seconds and ``limit`` bytes (408 and 413 otherwise);
    a client that leaves half-way is a ``CLIENT_GONE``, not a server failure."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"the body is {int(declared)} bytes; the limit is {limit} bytes (--max-body-mb)")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise Problem(413, f"the body is over {limit} bytes (--max-body-mb)")
                chunks.append(chunk)
    except TimeoutError:
        raise Problem(408, f"the request body did not arrive within {timeout:g} s (--body-timeout)") from None
    except ClientDisconnect:
        log.info("a client closed its connection before sending its whole body")
        raise Problem(CLIENT_GONE, "the client closed the connection before sending its whole body") from None
    return b"".join(chunks)


def _decoded(body: bytes, encoding: str, limit: int) -> bytes:
    """The body as sent before its ``Content-Encoding``: gzip undone (a batch client's large
    CSV or JSON), its decompressed size held to ``limit`` as a plain body's is (413, never a
    gzip bomb's gigabytes); any other encoding is a 415 rather than bytes read as text."""
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip() and c.strip().lower() != "identity"]
    if not codings:
        return body
    if codings != ["gzip"] and codings != ["x-gzip"]:
        raise Problem(415, f"Content-Encoding {encoding!r} is not accepted: send the body as it is, or gzip it "
                           "(Content-Encoding: gzip)")
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        plain = inflate.decompress(body, limit + 1)
    except zlib.error as exc:
        raise Problem(400, f"the body says Content-Encoding: gzip but is not gzip data ({exc})") from None
    if len(plain) > limit:
        raise Problem(413, f"the body is over {limit} bytes once decompressed (--max-body-mb)")
    if not inflate.eof:
        raise Problem(400, "the gzip body is truncated")
    return plain


class _Guard:
    """The outermost layer (plain ASGI, cheaper than a middleware class per request): the
    API key on ``/v1/`` paths, and the request counters and latency of every endpoint."""

    def __init__(self, app: Any, metrics: ServiceMetrics, api_key: str | None) -> None:
        self.app, self.metrics = app, metrics
        self.state = app.state
        self._key = api_key.encode() if api_key else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        path = scope["path"]
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if self._key is not None and path.startswith("/v1/") and not self._authorized(scope):
                await _send_json(send_status, 401, {"error": f"missing or wrong {API_KEY_HEADER} header"})
            else:
                await self.app(scope, receive, send_status)
        finally:
            endpoint = path if path in ENDPOINTS else "other"
            self.metrics.request(endpoint, status, time.perf_counter() - start)

    def _authorized(self, scope: dict[str, Any]) -> bool:
        given = next((v for k, v in scope["headers"] if k == API_KEY_HEADER.encode()), b"")
        return hmac.compare_digest(given, self._key)


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    data = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or a one-line ``DataError`` (a port in use, a host that
    does not resolve or is not this machine's): said before the server starts."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise DataError(f"cannot listen on {host}:{port}: the host does not resolve "
                        f"({getattr(exc, 'strerror', None) or exc})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise DataError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _deadline_protocol(timeout: float) -> Any:
    """Uvicorn's httptools protocol with a deadline for each request's headers: a client that
    opens a connection and never finishes its headers is closed after ``timeout`` seconds
    (uvicorn itself waits for ever). ``"auto"`` where httptools is missing."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
        return "auto"

    class HeaderDeadline(HttpToolsProtocol):
        _timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._timer = self.loop.call_later(timeout, self.timeout_keep_alive_handler)  # closes the transport

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderDeadline


def server_config(app: Any, options: ServiceOptions | None = None, max_connections: int = MAX_CONNECTIONS,
                  **uvicorn_options: Any) -> Any:
    """Uvicorn's configuration for ``app``: at most ``max_connections`` connections (503
    beyond), headers due within the body timeout, idle keep-alive connections closed after
    ``IDLE_TIMEOUT`` seconds."""
    import uvicorn

    opts = options or ServiceOptions()
    return uvicorn.Config(app, http=_deadline_protocol(opts.body_timeout), limit_concurrency=max_connections,
                          timeout_keep_alive=IDLE_TIMEOUT, **uvicorn_options)


def serve(model_dir: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 8000,
          options: ServiceOptions | None = None, access_log: bool = False, threads: int = 1,
          max_connections: int = MAX_CONNECTIONS) -> None:
    """Run the service until interrupted (SIGINT/SIGTERM finish the requests in flight).
    ``threads``: torch's threads for scoring; one by default, since the event loop needs a
    core of its own to parse requests and a second scoring thread only spins against it."""
    import uvicorn

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(model_dir, options)  # a bad model or key fails here, before the port is taken
    sock = listen(host, port)
    log.info("listening on http://%s:%d (at most %d connections)", host, port, max_connections)
    config = server_config(app, options, max_connections, access_log=access_log, log_level="info",
                           timeout_graceful_shutdown=30)
    uvicorn.Server(config).run(sockets=[sock])
