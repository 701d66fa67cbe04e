"""ASGI middleware: request-size limit (413), Prometheus request metrics, HEAD as GET.

Both are plain ASGI wrappers (no BaseHTTPMiddleware), so they add little per-request cost.
"""

from __future__ import annotations

import json
import time

__all__ = ["BodyLimit", "Metrics", "MetricsMiddleware", "HeadAsGet"]

# Latency buckets in seconds, chosen around the service's 50 ms p99 target.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _TooLarge(Exception):
    pass


async def _send_json(send, status: int, doc: dict) -> None:
    body = json.dumps(doc).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, whether or not Content-Length is
    sent (a chunked body is counted as it streams in)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        detail = {"detail": f"request body larger than {self.max_bytes} bytes"}
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    return await _send_json(send, 413, detail)
        seen, too_large, replied = 0, False, False

        async def limited_receive():
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_large = True
                    raise _TooLarge
            return message

        async def guarded_send(message):
            # The framework may turn the exception above into its own 400; answer 413 instead.
            nonlocal replied
            if too_large:
                if not replied and message["type"] == "http.response.start":
                    replied = True
                    await _send_json(send, 413, detail)
                return
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _TooLarge:
            pass
        if too_large and not replied:
            await _send_json(send, 413, detail)


class Metrics:
    """Request counters, latency histograms and run gauges, in a registry of their own (one
    per app, so several apps in one process never clash), rendered by prometheus_client."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("shopml_requests", "HTTP requests by method, route and status.",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("shopml_request_seconds", "Request latency.", ["route"], buckets=BUCKETS,
                                 registry=self.registry)
        self.loaded_at = Gauge("shopml_run_loaded_timestamp_seconds", "When the served run was loaded (unix time).",
                               registry=self.registry)
        self.loads = Counter("shopml_run_loads", "Verified loads of the run: the first and every reload.",
                             registry=self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def run_loaded(self, when: float) -> None:
        self.loaded_at.set(when)
        self.loads.inc()

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class MetricsMiddleware:
    """Time each HTTP request and count it under its route template (not the raw path,
    which would leak user ids into labels and explode cardinality)."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0, method = time.perf_counter(), scope.get("method", "?")  # before HeadAsGet rewrites it
        status = 500

        async def recording_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe(method, route, status, time.perf_counter() - t0)


class HeadAsGet:
    """Answer HEAD like GET without a body (RFC 9110 9.3.2); FastAPI routes only list GET.

    The scope is changed in place so the router's match (the route template the metrics
    use) stays visible to the outer middleware.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "HEAD":
            return await self.app(scope, receive, send)
        scope["method"] = "GET"

        async def bodiless_send(message):
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, bodiless_send)
