"""The shard-key audit: what it reports, and that a real client's listener records it."""

from pathlib import Path

from momentum_libs.mongo import mongo_client
from momentum_libs.sharding import EXPIRY_SWEEP, read_violations, violations


def test_a_filter_without_the_shard_key_is_reported_with_its_field_names_only() -> None:
    found = violations("find", {"find": "daily_logs", "filter": {"_id": 1, "deleted": False}})
    assert found == [
        {
            "command": "find",
            "collection": "daily_logs",
            "key": "user_id",
            "fields": ["_id", "deleted"],
        }
    ]


def test_each_write_of_a_batch_is_checked() -> None:
    command = {"update": "goals", "updates": [{"q": {"user_id": "u", "_id": 1}}, {"q": {"_id": 2}}]}
    assert [v["fields"] for v in violations("update", command)] == [["_id"]]
    deletes = {"delete": "sessions", "deletes": [{"q": {"$and": [{"user_id": "u"}, {"_id": 3}]}}]}
    assert violations("delete", deletes) == []


def test_aggregate_and_find_and_modify_are_checked() -> None:
    assert violations("aggregate", {"aggregate": "analytics_months", "pipeline": [{"$match": {}}]})
    assert violations("findAndModify", {"findAndModify": "weekly_targets", "query": {"slot": "x"}})
    assert not violations(
        "findAndModify", {"findAndModify": "analytics_users", "query": {"_id": "u"}}
    )


def test_unsharded_collections_and_broadcasts_by_design_pass() -> None:
    assert not violations("find", {"find": "users", "filter": {"email": "a@example.com"}})
    assert not violations("find", {"find": "goals", "filter": {"outbox_pending": True}})
    assert not violations(
        "delete", {"delete": "refresh_tokens", "deletes": [{"q": {"user_id": "u"}}]}
    )
    assert violations("find", {"find": "refresh_tokens", "filter": {"user_id": "u"}})
    # The embedded server's expiry sweep, by its comment (it never runs on MongoDB).
    sweep = {"delete": "daily_logs", "deletes": [{"q": {"purge_at": {"$lt": 1}}}]}
    assert violations("delete", sweep)
    assert not violations("delete", {**sweep, "comment": EXPIRY_SWEEP})


async def test_the_client_records_what_it_sends(mongodb_url: str, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    client = mongo_client(mongodb_url, 5000, audit)
    try:
        logs = client["audit_test"]["daily_logs"]
        await logs.find_one({"user_id": "u1", "_id": "x"})
        assert read_violations(audit) == []
        await logs.find_one({"_id": "x"})
        await logs.update_one({"date": "2026-01-01"}, {"$set": {"minutes": 1}})
    finally:
        await client.drop_database("audit_test")
        await client.close()
    assert [(v["command"], v["fields"]) for v in read_violations(audit)] == [
        ("find", ["_id"]),
        ("update", ["date"]),
    ]
