"""The HTTP service in-process: auth, limits, validation, answers, metrics, reload."""

from __future__ import annotations

import threading

import pytest

from shopml.errors import ArtifactError, ConfigError

ALL = {"X-API-Key": "all-scopes-key"}
REC = {"X-API-Key": "recommend-only-key"}
RAW = "shopper-003@example.com"


def test_probes_and_openapi(client):
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and "recommend" in ready["components"]
    spec = client.get("/openapi.json").json()
    assert {"/v1/users/{user_id}/recommendations", "/v1/recommendations", "/v1/sessions/predict",
            "/v1/prices/optimize", "/v1/items/{item_id}/demand-curve"} <= set(spec["paths"])
    assert "APIKeyHeader" in spec["components"]["securitySchemes"]


@pytest.mark.parametrize("headers, status", [({}, 401), ({"X-API-Key": "wrong-key-123"}, 401), (REC, 200)])
def test_recommend_needs_a_key(client, headers, status):
    r = client.get(f"/v1/users/{RAW}/recommendations", headers=headers)
    assert r.status_code == status, r.text
    if status == 401:
        assert "API key" in r.json()["detail"]


def test_wrong_scope_is_forbidden(client):
    r = client.post("/v1/sessions/predict", json={"events": [{"item_id": "item1"}]}, headers=REC)
    assert r.status_code == 403 and "sessions" in r.json()["detail"]
    assert client.post("/v1/admin/reload", headers=REC).status_code == 403


def test_known_user_gets_personal_recommendations(client):
    r = client.get(f"/v1/users/{RAW}/recommendations", params={"k": 5, "explain": True}, headers=ALL).json()
    assert r["fallback"] is None and len(r["items"]) == 5
    assert all(it["because"] for it in r["items"])  # occlusion reasons from the history
    unknown = client.get("/v1/users/nobody/recommendations", headers=ALL).json()
    assert unknown["fallback"] == "popularity" and unknown["items"]


def test_history_recommendations_skip_unknown_items(client):
    body = {"items": ["item3", "not-an-item"], "k": 3}
    r = client.post("/v1/recommendations", json=body, headers=ALL).json()
    assert r["unknown_items"] == ["not-an-item"] and len(r["items"]) == 3
    assert "item3" not in [i["item_id"] for i in r["items"]]  # seen items excluded


def test_session_prediction(client):
    body = {"events": [{"item_id": "item1"}, {"item_id": "item2"}], "k": 4}
    r = client.post("/v1/sessions/predict", json=body, headers=ALL)
    assert r.status_code == 200 and len(r.json()["next_items"]) == 4


def test_session_purchase_probability(client):
    body = {"events": [{"item_id": "i01", "dwell_seconds": 30}, {"item_id": "i02", "event_type": "cart"}]}
    r = client.post("/v1/sessions/predict", json=body, headers=ALL).json()
    assert 0 < r["purchase_probability"] < 1
    bad = client.post("/v1/sessions/predict", json={"events": [{"item_id": "i01", "event_type": "buy"}]}, headers=ALL)
    assert bad.status_code == 422 and "events.0.event_type: Input should be" in bad.json()["message"]


def test_price_optimization_respects_constraints(client):
    body = {"item_id": "item1", "max_change": 0.1, "min_margin": 0.05, "endings": [0.49, 0.99]}
    r = client.post("/v1/prices/optimize", json=body, headers=ALL)
    assert r.status_code == 200, r.text
    price = r.json()["price"]
    assert round(price % 1, 2) in (0.49, 0.99) and r.json()["expected_units"] > 0
    infeasible = client.post("/v1/prices/optimize", json={"item_id": "item1", "min_price": 50, "max_price": 10},
                             headers=ALL)
    assert infeasible.status_code == 409
    assert client.post("/v1/prices/optimize", json={"item_id": "nope"}, headers=ALL).status_code == 404


def test_group_price_is_shared_and_within_every_items_bounds(client):
    body = {"item_ids": ["item1", "item2"], "min_price": 0.5, "max_price": 500.0, "endings": [0.99]}
    r = client.post("/v1/prices/optimize-group", json=body, headers=ALL)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert [i["item_id"] for i in doc["items"]] == ["item1", "item2"]
    assert 0.5 <= doc["price"] <= 500 and round(doc["price"] % 1, 2) == 0.99
    assert all(it["price"] == doc["price"] and it["expected_units"] > 0 for it in doc["items"])
    assert doc["value_interval"]["low"] <= doc["value"] <= doc["value_interval"]["high"]
    # without bounds the ±30% cap holds around every item's current price: a shared price
    # exists only when the two are within reach of each other
    capped = client.post("/v1/prices/optimize-group", json={"item_ids": ["item1", "item2"]}, headers=ALL)
    cur = [it["current_price"] for it in doc["items"]]
    reachable = max(cur) * 0.7 <= min(cur) * 1.3
    assert capped.status_code == (200 if reachable else 409)
    one = client.post("/v1/prices/optimize-group", json={"item_ids": ["item1"]}, headers=ALL)
    assert one.status_code == 422
    unknown = client.post("/v1/prices/optimize-group", json={"item_ids": ["item1", "nope"]}, headers=ALL)
    assert unknown.status_code == 404
    infeasible = client.post("/v1/prices/optimize-group", json={"item_ids": ["item1", "item2"], "min_price": 50,
                                                                "max_price": 10}, headers=ALL)
    assert infeasible.status_code == 409
    assert client.post("/v1/prices/optimize-group", json={"item_ids": ["item1", "item2"]}, headers=REC).status_code == 403


def test_demand_curve_is_monotone(client):
    r = client.get("/v1/items/item2/demand-curve", params={"points": 10}, headers=ALL).json()
    units = r["units"]
    assert len(units) == 10 and all(a >= b for a, b in zip(units, units[1:]))
    assert all(e <= 0 for e in r["elasticity"])
    assert client.get("/v1/items/nope/demand-curve", headers=ALL).status_code == 404


def test_pricing_absent_is_404(tiny_run, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from shopml.runs import load_run, save_run
    from shopml.service import create_app

    run = load_run(tiny_run)
    save_run(tmp_path / "run", components={"recommend": run.components["recommend"]}, key=bytes.fromhex("ab" * 32))
    c = TestClient(create_app(tmp_path / "run", api_keys={"all-scopes-key": ["*"]}))
    r = c.post("/v1/prices/optimize", json={"item_id": "item1"}, headers=ALL)
    assert r.status_code == 404 and "no pricing model" in r.json()["detail"]


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"items": ["a"], "k": 0}, "k: Input should be greater than or equal to 1"),
        ({"items": "item1"}, "items: Input should be a valid list"),
        ({"items": ["a"], "bogus": 1}, "bogus: Extra inputs are not permitted"),
        ({}, "items: Field required"),
    ],
)
def test_invalid_bodies_get_422_with_a_clear_message(client, body, fragment):
    r = client.post("/v1/recommendations", json=body, headers=ALL)
    assert r.status_code == 422 and fragment in r.json()["message"]


def test_malformed_and_oversized_bodies(client):
    bad = client.post("/v1/recommendations", content=b"{not json", headers={**ALL, "content-type": "application/json"})
    assert bad.status_code == 422
    big = {"items": ["x" * 100] * 1000}
    assert client.post("/v1/recommendations", json=big, headers=ALL).status_code == 413

    def chunks():  # no Content-Length: the limit must still hold while streaming
        for _ in range(100):
            yield b" " * 1024

    r = client.post("/v1/recommendations", content=chunks(), headers={**ALL, "content-type": "application/json"})
    assert r.status_code == 413


def test_metrics_count_requests_by_route(client):
    client.get(f"/v1/users/{RAW}/recommendations", headers=ALL)
    text = client.get("/metrics").text
    assert 'shopml_requests_total{method="GET",route="/v1/users/{user_id}/recommendations",status="200"}' in text
    assert RAW not in text and "shopml_request_seconds_bucket" in text


def test_reload_swaps_without_failing_in_flight_requests(client):
    app = client.app
    old = app.state.holder.engine
    errors, done = [], threading.Event()

    def hammer():
        while not done.is_set():
            r = client.get(f"/v1/users/{RAW}/recommendations", headers=ALL)
            if r.status_code != 200:
                errors.append(r.status_code)

    t = threading.Thread(target=hammer)
    t.start()
    try:
        for _ in range(3):
            assert client.post("/v1/admin/reload", headers=ALL).json()["status"] == "reloaded"
    finally:
        done.set()
        t.join()
    assert errors == [] and app.state.holder.engine is not old


def test_create_app_refuses_bad_runs_and_missing_keys(tiny_run, tmp_path, monkeypatch):
    from shopml.service import create_app

    monkeypatch.delenv("SHOPML_API_KEYS", raising=False)
    monkeypatch.delenv("SHOPML_API_KEYS_FILE", raising=False)
    with pytest.raises(ConfigError, match="no API keys"):
        create_app(tiny_run)
    with pytest.raises(ArtifactError):
        create_app(tmp_path / "missing", api_keys={"all-scopes-key": ["*"]})
    monkeypatch.setenv("SHOPML_KEY", "cd" * 32)  # another pseudonymization key
    with pytest.raises(ArtifactError, match="another pseudonymization key"):
        create_app(tiny_run, api_keys={"all-scopes-key": ["*"]})


def test_keys_from_environment(tiny_run, monkeypatch):
    from fastapi.testclient import TestClient

    from shopml.service import create_app

    monkeypatch.setenv("SHOPML_API_KEYS", "env-key-12345:sessions")
    c = TestClient(create_app(tiny_run))
    assert c.post("/v1/sessions/predict", json={"events": []}, headers={"X-API-Key": "env-key-12345"}).status_code == 200
    assert c.get(f"/v1/users/{RAW}/recommendations", headers={"X-API-Key": "env-key-12345"}).status_code == 403


def test_concurrent_user_requests_are_batched_and_match_single_answers(client, monkeypatch):
    import asyncio

    import httpx

    app = client.app
    engine = app.state.holder.engine
    monkeypatch.setattr(engine, "_top", None)  # no precomputed lists: every request is scored
    users = [f"shopper-{n:03d}@example.com" for n in range(8)] + ["nobody"]
    sizes, single = [], engine.recommend_users

    def spy(ids, k, rules=None):
        sizes.append(len(ids))
        return single(ids, k=k, rules=rules)

    engine.recommend_users = spy
    # every other request carries its own rules: they are batched too, each under its rules
    params = [{"k": 4} if n % 2 else {"k": 4, "exclude": ["item1", "item2"], "max_per_category": 1}
              for n in range(len(users))]

    async def burst():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=ALL) as c:
            return await asyncio.gather(*(c.get(f"/v1/users/{u}/recommendations", params=q)
                                          for u, q in zip(users, params)))

    answers = asyncio.run(burst())
    assert max(sizes) > 1 and sum(sizes) == len(users)  # one model call served several requests
    from shopml.recommend.rules import Rules

    for user, q, r in zip(users, params, answers):
        rules = Rules.from_options(exclude=q.get("exclude"), max_per_category=q.get("max_per_category"))
        alone = engine.recommend_user(user, k=4, rules=rules)
        assert [i["item_id"] for i in r.json()["items"]] == [i["item_id"] for i in alone["items"]]
        assert r.json()["fallback"] == alone["fallback"]


def test_known_users_are_answered_from_the_load_time_lists_as_scoring_would(client, monkeypatch):
    engine = client.app.state.holder.engine
    assert engine._top is not None
    queries = [{"k": 4}, {"k": 6, "exclude": ["item1", "item2"], "max_per_category": 1},
               {"k": 3, "price_min": 2, "price_max": 5}]
    listed = [client.get(f"/v1/users/shopper-{n:03d}@example.com/recommendations", params=q, headers=ALL).json()
              for n in range(10) for q in queries]
    monkeypatch.setattr(engine, "_top", None)
    scored = [client.get(f"/v1/users/shopper-{n:03d}@example.com/recommendations", params=q, headers=ALL).json()
              for n in range(10) for q in queries]
    for a, b in zip(listed, scored):
        assert [i["item_id"] for i in a["items"]] == [i["item_id"] for i in b["items"]]
        assert a["model"] == b["model"] and a["fallback"] is b["fallback"] is None
