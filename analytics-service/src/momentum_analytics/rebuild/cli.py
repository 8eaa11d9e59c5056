"""``momentum-analytics-rebuild --user ID [--user ID …] | --all``

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


async def run(settings: AnalyticsSettings, user_ids: list[str] | None) -> RebuildReport:
    # Bulk reads and writes may take longer than a request's store timeout.
    timeout_ms = max(settings.store_timeout_ms, 30_000)
    ours = mongo_client(settings.mongodb_url, timeout_ms)
    tracking = (
        ours
        if settings.tracking_url == settings.mongodb_url
        else mongo_client(settings.tracking_url, timeout_ms)
    )
    try:
        repo = ProjectionRepository(ours[settings.mongodb_db])
        await repo.ensure_indexes()
        rebuilder = Rebuilder(
            repo,
            TrackingSource(tracking[settings.tracking_mongodb_db]),
            settings.rebuild_concurrency,
        )
        ids = user_ids if user_ids is not None else await rebuilder.all_user_ids()
        return await rebuilder.rebuild(ids)
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
    args = parser.parse_args(argv)
    settings = AnalyticsSettings()
    configure_logging("analytics-rebuild", settings.log_level, settings.log_json)
    report = asyncio.run(run(settings, None if args.all else list(args.user)))
    print(json.dumps(report.as_dict()), file=sys.stdout, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
