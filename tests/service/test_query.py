"""The user endpoint's query string, parsed by one model: types, repeated keys, errors under
``query``, and the same parameters in OpenAPI."""

from __future__ import annotations

from .conftest import RAW_USERS

ALL = {"X-API-Key": "all-scopes-key"}
URL = f"/v1/users/{RAW_USERS[0]}/recommendations"


def test_repeated_keys_are_lists_and_strings_are_converted(client):
    r = client.get(URL, params=[("k", "5"), ("exclude", "item1"), ("exclude", "item2"), ("explain", "true")],
                   headers=ALL)
    assert r.status_code == 200, r.text
    items = [i["item_id"] for i in r.json()["items"]]
    assert len(items) == 5 and not {"item1", "item2"} & set(items)
    assert all("because" in i for i in r.json()["items"])


def test_errors_name_the_query_field(client):
    for query, field in (("k=0", "query.k"), ("k=ten", "query.k"), ("objective=volume", "query.objective"),
                         ("price_min=-1", "query.price_min")):
        r = client.get(f"{URL}?{query}", headers=ALL)
        assert r.status_code == 422, (query, r.text)
        assert r.json()["message"].startswith(field), (query, r.text)


def test_openapi_lists_every_query_parameter_once(client):
    from shopml.service.schemas import UserQuery

    op = client.get("/openapi.json").json()["paths"]["/v1/users/{user_id}/recommendations"]["get"]
    names = [p["name"] for p in op["parameters"] if p["in"] == "query"]
    assert sorted(names) == sorted(UserQuery.model_fields) and len(names) == len(set(names))
    k = next(p for p in op["parameters"] if p["name"] == "k")
    assert k["schema"]["minimum"] == 1 and k["schema"]["maximum"] == 100
