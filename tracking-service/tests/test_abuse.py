"""Hostile input is a 4xx, never a 5xx."""

import pytest
from tracking_support import Api


@pytest.mark.parametrize(
    "title", ["\u0000", "nul\u0000inside", "😀" * 50, "\ud800", "$where", "a.b", '{"$gt": 1}']
)
async def test_strange_strings_are_stored_or_refused_never_500(api: Api, title: str) -> None:
    h = api.user()
    r = await api.client.post(
        "/goals",
        content=('{"title": "' + title.replace('"', '\\"') + '"}').encode("utf-8", "surrogatepass"),
        headers={**h, "Content-Type": "application/json"},
    )
    assert r.status_code in (201, 422), r.text
    if r.status_code == 201:
        got = await api.client.get(f"/goals/{r.json()['id']}", headers=h)
        assert got.json()["title"] == title


@pytest.mark.parametrize("escaped", [b"\\ud800", b"\\udfff", b"\\u0000"])
async def test_json_escaped_lone_surrogates_are_never_500(api: Api, escaped: bytes) -> None:
    h = api.user()
    goal = await api.goal(h)
    for path, body in (
        ("/goals", b'{"title": "x' + escaped + b'"}'),
        ("/daily-logs", b'{"goal_id": "' + goal["id"].encode() + b'", "date": "2026-11-20", '
         b'"minutes": 5, "note": "' + escaped + b'"}'),
    ):  # fmt: skip
        r = await api.client.post(
            path, content=body, headers={**h, "Content-Type": "application/json"}
        )
        assert r.status_code in (201, 422), (path, r.text)


@pytest.mark.parametrize(
    "params",
    [
        {"goal_id": {"$ne": None}},
        {"goal_id": "[$ne]"},
        {"from": "0001-01-01", "to": "9999-12-31"},
        {"cursor": "W10"},
        {"cursor": "WyJkYWlseS1sb2dzIiwxLCJ4Il0"},
        {"cursor": "\u00ff" * 10},
        {"limit": "1e3"},
    ],
)
async def test_strange_queries_are_never_500(api: Api, params: dict[str, object]) -> None:
    h = api.user()
    for path in ("/daily-logs", "/weekly-targets", "/goals"):
        r = await api.client.get(path, params=params, headers=h)  # type: ignore[arg-type]
        assert r.status_code in (200, 422), (path, r.text)


async def test_operator_in_ids_and_bodies_is_404_or_422(api: Api) -> None:
    h = api.user()
    r = await api.client.post(
        "/daily-logs",
        json={"goal_id": {"$ne": None}, "date": "2026-11-20", "minutes": 5},
        headers=h,
    )
    assert r.status_code == 422
    for path in ("/goals/$ne", "/daily-logs/%7B%22$ne%22:1%7D", "/weekly-targets/" + "0" * 25):
        assert (await api.client.get(path, headers=h)).status_code == 404
