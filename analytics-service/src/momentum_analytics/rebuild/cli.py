"""``momentum-analytics-rebuild --user ID [--user ID …] | --all [--after ID]``

Recomputes analytics' projections from tracking's database (read-only) while the
service keeps serving and consuming. Settings come from the same environment as the
service (``MONGODB_URL``, ``MOMENTUM_ANALYTICS_MONGODB_DB``,
``MOMENTUM_ANALYTICS_TRACKING_MONGODB_URL``, ``MOMENTUM_ANALYTICS_TRACKING_MONGODB_DB``).
Prints one JSON line: users, logs, seconds, logs_per_second.
"""

import argparse
import asyncio
import json
import sys

from momentum_libs.logging import configure_logging
from momentum_libs.mongo import mongo_client

from momentum_analytics.projections.repository import ProjectionRepository
from momentum_analytics.rebuild.service import Rebuilder, RebuildReport
from momentum_analytics.rebuild.source import TrackingSource
from momentum_analytics.settings import AnalyticsSettings


async def run(
    settings: AnalyticsSettings, user_ids: list[str] | None, after: str | None = None
) -> RebuildReport:
    """Rebuild ``user_ids``, or every user (after ``after``) when None."""
    # Bulk reads and writes may take longer than a request's store timeout.
    timeout_ms = max(settings.store_timeout_ms, 30_000)
    audit = settings.mongo_audit_file
    ours = mongo_client(settings.mongodb_url, timeout_ms, audit)
    tracking = (
        ours
        if settings.tracking_url == settings.mongodb_url
        else mongo_client(settings.tracking_url, timeout_ms, audit)
    )
    try:
        repo = ProjectionRepository(ours[settings.mongodb_db])
        await repo.ensure_indexes()
        rebuilder = Rebuilder(
            repo,
            TrackingSource(tracking[settings.tracking_mongodb_db]),
            settings.rebuild_concurrency,
        )
        if user_ids is None:
            return await rebuilder.rebuild_all(after)
        return await rebuilder.rebuild(user_ids)
    finally:
        await ours.close()
        if tracking is not ours:
            await tracking.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="momentum-analytics-rebuild",
        description="Recompute analytics projections from tracking's data.",
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--user", action="append", metavar="ID", help="a user id (repeatable)")
    group.add_argument("--all", action="store_true", help="every user tracking knows")
    parser.add_argument(
        "--after",
        metavar="ID",
        help="with --all: only users after this id (resume from a rebuild_progress line)",
    )
    args = parser.parse_args(argv)
    if args.after is not None and not args.all:
        parser.error("--after goes with --all")
    settings = AnalyticsSettings()
    configure_logging("analytics-rebuild", settings.log_level, settings.log_json)
    report = asyncio.run(run(settings, None if args.all else list(args.user), args.after))
    print(json.dumps(report.as_dict()), file=sys.stdout, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
