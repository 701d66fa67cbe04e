"""ASGI middleware: request-size limit (413) and Prometheus request metrics.

Both are plain ASGI wrappers (no BaseHTTPMiddleware), so they add little per-request cost.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict

__all__ = ["BodyLimit", "Metrics", "MetricsMiddleware"]

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
    """Request counters and latency histograms by route template and status, rendered
    in the Prometheus text format."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.latency_sum: dict[str, float] = defaultdict(float)
        self.gauges: dict[str, float] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            counts = self.latency[route]
            for i, edge in enumerate(BUCKETS):
                if seconds <= edge:
                    counts[i] += 1
                    break
            else:
                counts[-1] += 1
            self.latency_sum[route] += seconds

    def render(self) -> str:
        lines = [
            "# HELP shopml_requests_total HTTP requests by method, route and status.",
            "# TYPE shopml_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), n in sorted(self.requests.items()):
                lines.append(f'shopml_requests_total{{method="{method}",route="{route}",status="{status}"}} {n}')
            lines += [
                "# HELP shopml_request_seconds Request latency.",
                "# TYPE shopml_request_seconds histogram",
            ]
            for route, counts in sorted(self.latency.items()):
                cum = 0
                for edge, c in zip([*BUCKETS, float("inf")], counts):
                    cum += c
                    le = "+Inf" if edge == float("inf") else repr(edge)
                    lines.append(f'shopml_request_seconds_bucket{{route="{route}",le="{le}"}} {cum}')
                lines.append(f'shopml_request_seconds_sum{{route="{route}"}} {self.latency_sum[route]:.6f}')
                lines.append(f'shopml_request_seconds_count{{route="{route}"}} {cum}')
            for name, value in sorted(self.gauges.items()):
                lines += [f"# TYPE {name} gauge", f"{name} {value}"]
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """Time each HTTP request and count it under its route template (not the raw path,
    which would leak user ids into labels and explode cardinality)."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
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
            self.metrics.observe(scope.get("method", "?"), route, status, time.perf_counter() - t0)
