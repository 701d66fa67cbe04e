"""What a hostile client or a tampered run folder must not get from the service: paths,
tracebacks, over-long ids, 405 on HEAD, a made-up purchase probability, a served run
that fails verification."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import pytest

from shopml.errors import ArtifactError, DataError

ALL = {"X-API-Key": "all-scopes-key"}
KEYS = {"all-scopes-key": ["*"]}
RAW = "shopper-003@example.com"


def _no_path(text: str, run) -> None:
    for p in {str(run), str(run.resolve()), str(run.parent)}:
        assert p not in text
    assert "Traceback" not in text and not re.search(r"(?<![\w/>])/(tmp|home|root|work)/", text)


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    return shutil.copytree(tiny_run, tmp_path / "served")


def _app(path):
    from fastapi.testclient import TestClient

    from shopml.service import create_app

    return TestClient(create_app(path, api_keys=KEYS), raise_server_exceptions=False)


def test_probes_and_reload_name_the_run_by_fingerprint(client, tiny_run):
    from shopml.runs import load_run

    fingerprint = load_run(tiny_run, components=False).fingerprint
    ready = client.get("/readyz")
    reloaded = client.post("/v1/admin/reload", headers=ALL)
    for r in (ready, reloaded):
        assert r.status_code == 200 and r.json()["run"] == fingerprint
        _no_path(r.text, tiny_run)
    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint)


def _edit_manifest(run, change):
    m = json.loads((run / "manifest.json").read_text())
    change(m)
    (run / "manifest.json").write_text(json.dumps(m, indent=1))


def test_reload_of_a_tampered_run_is_refused_without_paths(run_copy):
    c = _app(run_copy)
    before = c.get(f"/v1/users/{RAW}/recommendations", headers=ALL).json()
    _edit_manifest(run_copy, lambda m: m["metrics"].update(x=1))
    r = c.post("/v1/admin/reload", headers=ALL)
    assert r.status_code == 409 and "signature does not match" in r.json()["detail"]
    _no_path(r.text, run_copy)
    assert c.get("/readyz").status_code == 200  # the previous run is still served
    assert c.get(f"/v1/users/{RAW}/recommendations", headers=ALL).json() == before


def _retensor(run):
    """Change a tensor's values and update its checksum, as an attacker without the key would."""
    from safetensors.numpy import load_file, save_file

    rel = "models/sessions/tensors.safetensors"
    tensors = {k: v * 0 + 1 for k, v in load_file(str(run / rel)).items()}
    save_file(tensors, str(run / rel))
    digest = hashlib.sha256((run / rel).read_bytes()).hexdigest()
    _edit_manifest(run, lambda m: m["files"].update({rel: digest}))


@pytest.mark.parametrize("tamper", [
    _retensor,
    lambda run: _edit_manifest(run, lambda m: m["components"][0].update({"class": "shopml.training.torch"})),
    lambda run: (run / "manifest.sig").unlink(),
])
def test_service_never_starts_on_a_run_it_cannot_verify(run_copy, tamper):
    tamper(run_copy)
    with pytest.raises(ArtifactError):
        _app(run_copy)


def test_ids_in_the_url_path_obey_the_length_limit(client):
    for route in ["/v1/users/{}/recommendations", "/v1/items/{}/demand-curve"]:
        assert client.get(route.format("x" * 129), headers=ALL).status_code == 422
        assert client.get(route.format("x" * 128), headers=ALL).status_code in (200, 404)


@pytest.mark.parametrize("route", ["/healthz", "/readyz", "/metrics", f"/v1/users/{RAW}/recommendations"])
def test_head_answers_like_get_without_a_body(client, route):
    get, head = client.get(route, headers=ALL), client.head(route, headers=ALL)
    assert head.status_code == get.status_code == 200
    assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]


def test_head_on_a_post_route_is_still_405(client):
    assert client.head("/v1/recommendations", headers=ALL).status_code == 405


@pytest.mark.parametrize("events", [[{"item_id": "never-seen"}, {"item_id": "nor-this", "event_type": "cart"}], []])
def test_session_of_unknown_items_gets_a_flagged_prior(client, events):
    intent = client.app.state.holder.engine.run.components["intent"]
    r = client.post("/v1/sessions/predict", json={"events": events}, headers=ALL).json()
    assert r["purchase_fallback"] == "prior"
    assert r["purchase_probability"] == pytest.approx(intent.base_rate_)


def test_session_with_a_known_item_is_predicted(client):
    intent = client.app.state.holder.engine.run.components["intent"]
    body = {"events": [{"item_id": intent.items_.to_list()[0]}, {"item_id": "never-seen"}]}
    r = client.post("/v1/sessions/predict", json=body, headers=ALL).json()
    assert r["purchase_fallback"] is None and 0 < r["purchase_probability"] < 1


def test_metrics_are_valid_prometheus_and_named_by_type(client):
    from prometheus_client.parser import text_string_to_metric_families

    client.post("/v1/admin/reload", headers=ALL)
    client.head("/healthz")
    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    assert families["shopml_run_loads"].type == "counter"
    assert [s.value for s in families["shopml_run_loads"].samples if s.name.endswith("_total")] == [2.0]
    assert families["shopml_run_loaded_timestamp_seconds"].type == "gauge"
    assert families["shopml_request_seconds"].type == "histogram"
    gauges = [s.name for f in families.values() if f.type == "gauge" for s in f.samples]
    assert not [n for n in gauges if n.endswith("_total")]
    heads = [s for s in families["shopml_requests"].samples if s.labels.get("method") == "HEAD"]
    assert heads and heads[0].labels["route"] == "/healthz"


def test_errors_carry_no_path_and_no_traceback(client, tiny_run, monkeypatch):
    engine = client.app.state.holder.engine

    def leaky_error(*a, **k):
        raise DataError("bad context", path=tiny_run / "models" / "pricing" / "model.json")

    def crash(*a, **k):
        raise RuntimeError(f"boom in {tiny_run.resolve()}/x.py")

    monkeypatch.setattr(engine, "demand_curve", leaky_error)
    r = client.get("/v1/items/item1/demand-curve", headers=ALL)
    assert r.status_code == 400 and "bad context" in r.json()["detail"]
    _no_path(r.text, tiny_run)
    monkeypatch.setattr(engine, "recommend_history", crash)
    from fastapi.testclient import TestClient

    r = TestClient(client.app, raise_server_exceptions=False).post("/v1/recommendations", json={"items": ["a"]},
                                                                   headers=ALL)
    assert r.status_code == 500 and r.json() == {"detail": "internal error"}
