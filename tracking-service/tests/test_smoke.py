from momentum_tracking.testing import Api


async def test_smoke(api: Api) -> None:
    h = api.user()
    g = await api.goal(h)
    assert g["is_active"] is True
    r = await api.client.post(
        "/daily-logs", json={"goal_id": g["id"], "date": "2026-11-20", "minutes": 30}, headers=h
    )
    assert r.status_code == 201, r.text
    r = await api.client.get("/daily-logs", headers=h)
    assert r.status_code == 200, r.text
    print(r.json())
