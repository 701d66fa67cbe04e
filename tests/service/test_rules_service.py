"""Business rules on both recommendation endpoints, with their own 4xx answers."""

from __future__ import annotations

import pytest

REC = {"X-API-Key": "recommend-only-key"}
RAW = "shopper-003@example.com"
CAT = {f"item{i}": f"c{i % 3}" for i in range(30)}
PRICE = {f"item{i}": float(i % 7) + 1.0 for i in range(30)}


def test_history_rules_hold_and_pins_come_first(client):
    rules = {"exclude": ["item5", "item6"], "price_min": 2.0, "price_max": 5.0, "max_per_category": 2,
             "pinned": ["item9", "item7", "item10"]}  # item7 costs 1.0: not eligible
    r = client.post("/v1/recommendations", json={"items": ["item1", "item2"], "k": 6, "rules": rules}, headers=REC)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    got = [x["item_id"] for x in items]
    assert len(got) == 6 and not {"item5", "item6", "item1", "item2"} & set(got)
    assert all(2.0 <= PRICE[i] <= 5.0 for i in got)
    assert max(sum(CAT[i] == c for i in got) for c in {CAT[i] for i in got}) <= 2
    assert got[:2] == ["item9", "item10"] and [x["pinned"] for x in items[:3]] == [True, True, False]


def test_user_endpoint_takes_rules_as_query_parameters(client):
    plain = client.get(f"/v1/users/{RAW}/recommendations?k=5", headers=REC).json()["items"]
    last = plain[-1]["item_id"]
    r = client.get(f"/v1/users/{RAW}/recommendations?k=5&boost={last}=1000&exclude={plain[0]['item_id']}",
                   headers=REC)
    assert r.status_code == 200, r.text
    got = [x["item_id"] for x in r.json()["items"]]
    assert got[0] == last and plain[0]["item_id"] not in got and len(got) == 5


def test_unknown_user_popularity_answer_obeys_the_rules_too(client):
    r = client.get("/v1/users/nobody@example.com/recommendations?k=4&max_per_category=1", headers=REC).json()
    assert r["fallback"] == "popularity" and len(r["items"]) == 3  # three categories, one each


@pytest.mark.parametrize("url, body, status, fragment", [
    ("/v1/recommendations", {"items": ["item1"], "rules": {"max_per_category": 0}}, 422, "max_per_category"),
    ("/v1/recommendations", {"items": ["item1"], "rules": {"colour": "red"}}, 422, "colour"),
    (f"/v1/users/{RAW}/recommendations?boost=item1", None, 422, "boost"),
    (f"/v1/users/{RAW}/recommendations?max_per_category=0", None, 422, "max_per_category"),
])
def test_bad_rules_are_4xx_with_a_clear_message(client, url, body, status, fragment):
    r = client.post(url, json=body, headers=REC) if body is not None else client.get(url, headers=REC)
    assert r.status_code == status, r.text
    assert fragment in r.text


def test_revenue_objective_on_both_endpoints(client):
    body = {"items": ["item1", "item2"], "k": 5, "objective": "revenue", "order": "value"}
    r = client.post("/v1/recommendations", json=body, headers=REC).json()
    ev = [x["expected_value"] for x in r["items"]]
    assert r["objective"] == "revenue" and r["order"] == "value" and ev == sorted(ev, reverse=True)
    shown = client.post("/v1/recommendations", json={**body, "order": "relevance"}, headers=REC).json()
    assert shown["order"] == "relevance" and {x["item_id"] for x in shown["items"]} == {x["item_id"] for x in r["items"]}
    p = [x["p_buy"] for x in shown["items"]]
    assert p == sorted(p, reverse=True)
    assert all(x["expected_value"] == pytest.approx(x["p_buy"] * PRICE[x["item_id"]]) for x in r["items"])
    u = client.get(f"/v1/users/{RAW}/recommendations?k=3&objective=profit&assumed_margin=0.25", headers=REC).json()
    assert u["assumed_margin"] == 0.25
    assert all(x["expected_value"] == pytest.approx(x["p_buy"] * 0.25 * PRICE[x["item_id"]]) for x in u["items"])
    assert u["order"] == "relevance"
    assert client.get(f"/v1/users/{RAW}/recommendations?objective=margin", headers=REC).status_code == 422
    assert client.get(f"/v1/users/{RAW}/recommendations?objective=profit&order=price", headers=REC).status_code == 422


def test_new_slots_bring_a_new_item_into_both_endpoints(tiny_run, tmp_path):
    import shutil

    from fastapi.testclient import TestClient

    from shopml.data.features import ItemFeatures
    from shopml.refresh import add_items_to_run
    from shopml.service import create_app

    from .conftest import KEYS

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    add_items_to_run(run, ItemFeatures.from_mapping({"brand-new": ["x"]}))
    with TestClient(create_app(run, api_keys=KEYS)) as c:
        u = c.get(f"/v1/users/{RAW}/recommendations?k=4&new_slots=1", headers=REC)
        h = c.post("/v1/recommendations", json={"items": ["item1"], "k": 4, "rules": {"new_slots": 1}}, headers=REC)
        for r in (u, h):
            assert r.status_code == 200, r.text
            got = [x["item_id"] for x in r.json()["items"]]
            assert len(got) == 4 and "brand-new" in got
        bad = c.get(f"/v1/users/{RAW}/recommendations?new_slots=-1", headers=REC)
        assert bad.status_code == 422 and "new_slots" in bad.text
