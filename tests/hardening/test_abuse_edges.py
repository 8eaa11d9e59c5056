"""Input at the very edges: the calendar's first and last days, JSON nested past recursion.

Both were 500s when these tests were written (analytics stepping a range past
9999-12-31 or before 0001-01-01, fixed in c530f1d; auth's login parsing JSON by hand,
where a RecursionError is not a ValueError, fixed in b6d5f6a).
"""

from collections.abc import Iterator

import httpx
import pytest
from momentum_libs.devstack import Stack

from ..conftest import Account, assert_problem, new_account


@pytest.fixture(scope="module")
def edge_client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=15) as client:
        yield client


@pytest.fixture(scope="module")
def someone(edge_client: httpx.Client) -> Account:
    return new_account(edge_client)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/analytics/heatmap", {"from": "9999-12-01", "to": "9999-12-31"}),
        ("/analytics/heatmap", {"from": "9999-12-31"}),
        ("/analytics/heatmap", {"to": "0001-01-02"}),
        ("/analytics/heatmap", {"from": "0001-01-01"}),
        ("/analytics/weekly-summary", {"week_start": "9999-12-27"}),
        ("/analytics/weekly-summary", {"week_start": "0001-01-01"}),
        ("/daily-logs", {"from": "9999-12-31", "to": "9999-12-31"}),
        ("/weekly-targets", {"from": "9999-12-27"}),
    ],
)
def test_the_ends_of_the_calendar_are_200_or_422(
    edge_client: httpx.Client, someone: Account, path: str, params: dict[str, str]
) -> None:
    response = edge_client.get(path, params=params, headers=someone.headers)
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert_problem(response, 422)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"email": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001,
    ],
    ids=["arrays", "objects"],
)
@pytest.mark.parametrize("path", ["/auth/login", "/auth/register", "/auth/refresh", "/goals"])
def test_json_nested_past_any_recursion_limit_is_a_4xx(
    edge_client: httpx.Client, someone: Account, path: str, body: bytes
) -> None:
    response = edge_client.post(
        path, content=body, headers={**someone.headers, "Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    assert_problem(response, response.status_code)
