"""The first and last days Python's calendar has: a range or a week past them is not a 500."""

import pytest

from .conftest import Service


@pytest.mark.parametrize(
    ("params", "first", "last"),
    [
        ({"from": "9999-12-01", "to": "9999-12-31"}, "9999-12-01", "9999-12-31"),
        ({"from": "9999-12-31"}, "9999-12-31", "9999-12-31"),
        ({"to": "0001-01-02"}, "0001-01-01", "0001-01-02"),
        ({"from": "0001-01-01"}, "0001-01-01", "0001-12-31"),
    ],
)
async def test_a_heatmap_at_the_ends_of_the_calendar_stops_at_them(
    service: Service, params: dict[str, str], first: str, last: str
) -> None:
    r = await service.get("/analytics/heatmap", "u-calendar", **params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["from"], body["to"]) == (first, last)
    assert (body["days"][0]["date"], body["days"][-1]["date"]) == (first, last)


async def test_a_week_that_would_end_past_the_calendar_is_422(service: Service) -> None:
    r = await service.get("/analytics/weekly-summary", "u-calendar", week_start="9999-12-27")
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["loc"] == ["query", "week_start"]
    first = await service.get("/analytics/weekly-summary", "u-calendar", week_start="0001-01-01")
    assert first.status_code == 200, first.text
    assert first.json()["week_end"] == "0001-01-07"
