"""The FastAPI application: thin handlers over :class:`shopml.service.engine.Engine`.

Example:
    >>> from fastapi.testclient import TestClient                      # doctest: +SKIP
    >>> app = create_app("runs/demo", api_keys={"secret-key": ["*"]})   # doctest: +SKIP
    >>> TestClient(app).get("/healthz").json()["status"]               # doctest: +SKIP
    'ok'
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import threading
import time
from collections import defaultdict
from pathlib import Path

from fastapi import Depends, FastAPI, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import APIKeyHeader

from shopml.errors import ArtifactError, ConfigError, DataError, InfeasibleError, ShopMLError
from shopml.recommend.rules import Rules
from shopml.service import schemas as S
from shopml.service.auth import HEADER, ApiKeys
from shopml.service.engine import Engine, Unavailable, UnknownId
from shopml.service.middleware import BodyLimit, HeadAsGet, Metrics, MetricsMiddleware
from shopml.service.query import openapi_parameters, query_model

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_key_header = APIKeyHeader(name=HEADER, auto_error=False, description="API key with the endpoint's scope.")
_ERRORS = {
    400: {"model": S.ErrorOut, "description": "Invalid request"},
    401: {"model": S.ErrorOut, "description": "Missing or unknown API key"},
    403: {"model": S.ErrorOut, "description": "The key lacks this endpoint's scope"},
    404: {"model": S.ErrorOut, "description": "Unknown id, or the run has no such model"},
    413: {"model": S.ErrorOut, "description": "Request body too large"},
}


class _Holder:
    """The live engine. Reload builds a new engine fully (verifying the run), then swaps one
    reference, so a request that already took the old engine finishes on it (no failed
    in-flight requests) and a run that fails verification is never served."""

    def __init__(self, run_path: Path, metrics: Metrics):
        self.run_path, self.metrics = run_path, metrics
        self.engine: Engine | None = None
        self.lock = threading.Lock()

    def load(self) -> Engine:
        with self.lock:  # one reload at a time; readers never take this lock
            engine = Engine.load(self.run_path)
            self.engine = engine
            self.metrics.run_loaded(time.time())
            # The model's many long-lived objects (id lists, dicts) would otherwise be re-scanned
            # by every full garbage collection: pauses of tens of ms in the latency tail.
            gc.collect()
            gc.freeze()
            return engine

    def paths(self) -> list[str]:
        """The run folder as given, absolute and resolved: none may appear in a response."""
        p = self.run_path
        return sorted({str(p), str(p.absolute()), str(p.resolve())}, key=len, reverse=True)


# An absolute filesystem path (not preceded by a word character, so ids like "a/b" stay,
# nor by "<run>", which already stands for the run folder).
_ABS_PATH = re.compile(r"(?<![\w/>])/(?:[\w.@+~-]+/)*[\w.@+~-]+")


def _public(message: str, holder: _Holder) -> str:
    """``message`` without any filesystem path (answers go to clients; the log keeps paths)."""
    for p in holder.paths():
        if p not in (".", "/"):
            message = message.replace(p, "<run>")
    return _ABS_PATH.sub("<path>", message)


class _Coalescer:
    """Concurrent user-recommendation requests arriving within ``window`` seconds are
    answered by one batched model call: one forward pass for B users instead of B passes.
    The call runs on the event loop (CPU-bound work gains nothing from threads here)."""

    def __init__(self, window: float = 0.001, max_batch: int = 64):
        self.window, self.max_batch, self.queue = window, max_batch, []

    async def recommend(self, engine: Engine, user_id: str, k: int, rules=None) -> dict:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.queue.append((engine, user_id, k, fut, rules))
        if len(self.queue) == 1:
            loop.call_later(self.window, self._flush)
        elif len(self.queue) >= self.max_batch:
            self._flush()
        return await fut

    def _flush(self) -> None:
        batch, self.queue = self.queue, []
        groups = defaultdict(list)
        for entry in batch:
            groups[(id(entry[0]), entry[2])].append(entry)  # same engine (reloads) and k
        for entries in groups.values():
            engine, k = entries[0][0], entries[0][2]
            try:
                answers = engine.recommend_users([e[1] for e in entries], k=k, rules=[e[4] for e in entries])
            except Exception as exc:  # each waiting request gets the error
                answers = [exc] * len(entries)
            for (_, _, _, fut, _), ans in zip(entries, answers):
                if not fut.done():
                    fut.set_exception(ans) if isinstance(ans, Exception) else fut.set_result(ans)


class _AuthError(Exception):
    def __init__(self, status: int, detail: str):
        self.status, self.detail = status, detail


def _require(scope: str):
    # async: a plain def would run in the thread pool, a thread hop per request for a dict lookup
    async def check(request: Request, key: str | None = Depends(_key_header)) -> Engine:
        granted = request.app.state.api_keys.scopes_of(key)
        if granted is None:
            raise _AuthError(401, f"missing or unknown API key (send it in the {HEADER} header)")
        if scope not in granted:
            raise _AuthError(403, f"this API key lacks the {scope!r} scope")
        engine = request.app.state.holder.engine
        if engine is None:
            raise Unavailable("no run is loaded yet")
        return engine

    return check


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(_AuthError)
    async def auth_error(request, exc: _AuthError):
        headers = {"WWW-Authenticate": HEADER} if exc.status == 401 else None
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        # Keep FastAPI's per-field list and add one readable line.
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse({"detail": errors, "message": _validation_message(exc)}, status_code=422)

    @app.exception_handler(ShopMLError)
    async def shop_error(request, exc: ShopMLError):
        status = 400
        if isinstance(exc, (UnknownId, Unavailable)):
            status = 404
        elif isinstance(exc, InfeasibleError):
            status = 409  # well-formed request whose constraints conflict
        elif not isinstance(exc, (DataError, ConfigError)):
            status = 400
        return JSONResponse({"detail": _public(str(exc), request.app.state.holder)}, status_code=status)

    @app.exception_handler(Exception)
    async def internal(request, exc: Exception):
        # The traceback goes to the log only: a client never sees code or paths.
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error"}, status_code=500)


def _resolve_keys(api_keys) -> ApiKeys:
    if isinstance(api_keys, ApiKeys):
        return api_keys
    keys = ApiKeys.from_mapping(api_keys) if api_keys is not None else ApiKeys.from_env()
    if not len(keys):
        raise ConfigError("no API keys configured: set SHOPML_API_KEYS or SHOPML_API_KEYS_FILE")
    return keys


def create_app(run_path, api_keys=None, *, max_body_bytes: int = 64 * 1024):
    """The HTTP service for the run at ``run_path``.

    ``api_keys`` maps key -> scopes (``recommend``, ``sessions``, ``pricing``, ``admin``, or
    ``"*"``); None reads them from SHOPML_API_KEYS / SHOPML_API_KEYS_FILE. The run is
    fully verified (signature under the pseudonymization key, every sha256, registered
    component classes) and loaded before the app is returned: ArtifactError otherwise.
    Answers never carry a filesystem path or a traceback; the run is named by its
    manifest fingerprint.
    """
    app = FastAPI(
        title="shopml",
        version=__import__("shopml").__version__,
        description="Recommendations, session predictions and price optimization from a shopml run.",
    )
    app.state.api_keys = _resolve_keys(api_keys)
    app.state.metrics = Metrics()
    app.state.holder = _Holder(Path(run_path), app.state.metrics)
    app.state.coalescer = _Coalescer()
    app.state.holder.load()
    _install_errors(app)
    _add_probes(app)
    _add_recommend(app)
    _add_sessions(app)
    _add_pricing(app)
    _add_admin(app)
    app.add_middleware(HeadAsGet)  # innermost: the metrics still see the request as HEAD
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app


def _add_probes(app: FastAPI) -> None:
    @app.get("/healthz", response_model=S.Health, tags=["ops"])
    async def healthz():
        """Liveness: the process answers."""
        return S.Health(status="ok")

    @app.get("/readyz", response_model=S.Health, responses={503: {"model": S.Health}}, tags=["ops"])
    async def readyz(request: Request):
        """Readiness: a verified run is loaded."""
        holder = request.app.state.holder
        if holder.engine is None:
            return JSONResponse(S.Health(status="loading").model_dump(), status_code=503)
        engine = holder.engine
        return S.Health(status="ready", run=engine.fingerprint, components=engine.component_names)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["ops"])
    async def metrics(request: Request):
        """Prometheus metrics (text format 0.0.4)."""
        from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

        return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_PLAIN_0_0_4)


def _add_recommend(app: FastAPI) -> None:
    rec = Depends(_require("recommend"))

    @app.get("/v1/users/{user_id}/recommendations", response_model=S.Recommendations, responses=_ERRORS,
             openapi_extra={"parameters": openapi_parameters(S.UserQuery)})
    async def user_recommendations(
        request: Request,
        user_id: S.Id = PathParam(min_length=1, max_length=S.MAX_ID,
                                  description="The shop's raw user id; hashed with the run's key on arrival."),
        q: S.UserQuery = Depends(query_model(S.UserQuery)),
        engine: Engine = rec,
    ):
        """Top-k items for a known user (popular items, flagged, for an unknown one), under the
        shop's rules when any is given."""
        k = q.k
        rules = Rules.from_options(exclude=q.exclude, price_min=q.price_min, price_max=q.price_max,
                                   max_per_category=q.max_per_category, pinned=q.pin, boost=q.boost,
                                   new_slots=q.new_slots)
        value = None if q.objective == "relevance" else {"objective": q.objective, "blend": q.blend,
                                                         "assumed_margin": q.assumed_margin, "order": q.order}
        if q.explain or value is not None:  # the coalescer batches relevance requests, with their rules
            return engine.recommend_user(user_id, k=k, explain=q.explain, rules=rules, value=value)
        listed = engine.recommend_listed(user_id, k=k, rules=rules)
        if listed is not None:
            return listed
        return await request.app.state.coalescer.recommend(engine, user_id, k, rules)

    @app.post("/v1/recommendations", response_model=S.Recommendations, responses=_ERRORS)
    async def history_recommendations(body: S.HistoryRequest, engine: Engine = rec):
        """Top-k items for a history given in the request (new or anonymous users)."""
        r = body.rules
        rules = None if r is None else Rules.from_options(
            exclude=r.exclude, price_min=r.price_min, price_max=r.price_max, max_per_category=r.max_per_category,
            pinned=r.pinned, boost=r.boost, new_slots=r.new_slots)
        value = None if body.objective == "relevance" else {
            "objective": body.objective, "blend": body.blend, "assumed_margin": body.assumed_margin,
            "order": body.order}
        return engine.recommend_history(body.items, k=body.k, exclude_seen=body.exclude_seen, explain=body.explain,
                                        candidates=body.candidates, rules=rules, value=value)


def _add_sessions(app: FastAPI) -> None:
    @app.post("/v1/sessions/predict", response_model=S.SessionPrediction, responses=_ERRORS)
    def predict_session(body: S.SessionRequest, engine: Engine = Depends(_require("sessions"))):
        """Next items of an ongoing session and the probability that it ends in a purchase."""
        ev = body.events
        return engine.predict_session([e.item_id for e in ev], event_types=[e.event_type for e in ev],
                                      dwell_seconds=[e.dwell_seconds for e in ev], k=body.k)


def _add_pricing(app: FastAPI) -> None:
    pricing = Depends(_require("pricing"))

    @app.post("/v1/prices/optimize", response_model=S.PriceProposal,
              responses={**_ERRORS, 409: {"model": S.ErrorOut, "description": "No price satisfies the constraints"}})
    def optimize_price(body: S.PriceRequest, engine: Engine = pricing):
        """The profit- (or revenue-) maximizing price of an item under constraints."""
        return engine.optimize_price(body.item_id, body.model_dump(exclude={"item_id"}, exclude_none=True))

    @app.post("/v1/prices/optimize-group", response_model=S.GroupPriceProposal,
              responses={**_ERRORS, 409: {"model": S.ErrorOut, "description": "No shared price satisfies the constraints"}})
    def optimize_group(body: S.GroupPriceRequest, engine: Engine = pricing):
        """One shared price for items that must move together, maximizing their summed profit."""
        return engine.optimize_group(body.item_ids, body.model_dump(exclude={"item_ids"}, exclude_none=True))

    @app.get("/v1/items/{item_id}/demand-curve", response_model=S.DemandCurve, responses=_ERRORS)
    def demand_curve(
        item_id: S.Id = PathParam(min_length=1, max_length=S.MAX_ID),
        points: int = Query(25, ge=3, le=200),
        unit_cost: float | None = Query(None, ge=0, le=1e9, allow_inf_nan=False),
        engine: Engine = pricing,
    ):
        """Predicted units, revenue, profit and elasticity over a grid of prices."""
        return engine.demand_curve(item_id, points=points, unit_cost=unit_cost)


def _add_admin(app: FastAPI) -> None:
    refused = {409: {"model": S.ErrorOut, "description": "The run folder fails verification; the previous run is still served"}}

    @app.post("/v1/admin/reload", response_model=S.Health, responses={**_ERRORS, **refused}, tags=["ops"])
    def reload(request: Request, _: Engine = Depends(_require("admin"))):
        """Reload the run folder (after a new ``shopml fit`` into it) and swap it in atomically."""
        holder = request.app.state.holder
        try:
            engine = holder.load()
        except ArtifactError as e:
            log.error("reload refused, still serving the previous run: %s", e)
            return JSONResponse({"detail": f"the run cannot be reloaded ({_public(str(e), holder)}); "
                                           "the previous run is still served"}, status_code=409)
        return S.Health(status="reloaded", run=engine.fingerprint, components=engine.component_names)
