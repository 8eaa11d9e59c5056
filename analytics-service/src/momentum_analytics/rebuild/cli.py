"""``momentum-analytics-rebuild --user ID [--user ID …] | --all [--after ID]``

Recomputes analytics' projections from tracking's database (read-only) while the
service keeps serving and consuming. Settings come from the same environment as the
service (``MONGODB_URL``, ``MOMENTUM_ANALYTICS_MONGODB_DB``,
``MOMENTUM_ANALYTICS_TRACKING_MONGODB_URL``, ``MOMENTUM_ANALYTICS_TRACKING_MONGODB_DB``),
then from the ``stack.env`` a running ``make up`` writes (momentum_libs.cli).
Prints one JSON line: users, logs, seconds, logs_per_second. ``momentum-ops
analytics-rebuild`` is the same with a progress bar.
"""

import argparse
import asyncio
import json
import sys
from collections.abc import Callable

from momentum_libs.cli import run_tool, tool_settings
from momentum_libs.logging import configure_logging
from momentum_libs.mongo import mongo_client

from momentum_analytics.projections.repository import ProjectionRepository
from momentum_analytics.rebuild.service import Rebuilder, RebuildReport
from momentum_analytics.rebuild.source import TrackingSource
from momentum_analytics.settings import AnalyticsSettings

# Bulk reads and writes may take longer than a request's store timeout.
BULK_OPERATION_TIMEOUT_MS = 30_000


async def run(
    settings: AnalyticsSettings,
    user_ids: list[str] | None,
    after: str | None = None,
    on_start: Callable[[int], None] | None = None,
    on_user_done: Callable[[], None] | None = None,
    include: Callable[[str], bool] | None = None,
) -> RebuildReport:
    """Rebuild ``user_ids``, or every user (after ``after``; those ``include`` accepts) when
    None; ``on_start`` gets how many users when they are named (every user is paged:
    their number is not read)."""
    timeout_ms = settings.store_timeout_ms
    bulk_ms = max(timeout_ms, BULK_OPERATION_TIMEOUT_MS)
    audit = settings.mongo_audit_file
    ours = mongo_client(settings.mongodb_url, timeout_ms, audit, socket_timeout_ms=bulk_ms)
    tracking = (
        ours
        if settings.tracking_url == settings.mongodb_url
        else mongo_client(settings.tracking_url, timeout_ms, audit, socket_timeout_ms=bulk_ms)
    )
    try:
        # An unreachable server fails here, within the store timeout, not mid-way.
        await ours.admin.command("ping")
        await tracking.admin.command("ping")
        repo = ProjectionRepository(ours[settings.mongodb_db])
        await repo.ensure_indexes()
        rebuilder = Rebuilder(
            repo,
            TrackingSource(tracking[settings.tracking_mongodb_db]),
            settings.rebuild_concurrency,
            settings.clock,
        )
        if user_ids is None:
            return await rebuilder.rebuild_all(after, on_user_done, include)
        if on_start is not None:
            on_start(len(user_ids))
        return await rebuilder.rebuild(user_ids, on_user_done)
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
    settings = tool_settings(AnalyticsSettings)
    configure_logging("analytics-rebuild", settings.log_level, settings.log_json)
    user_ids = None if args.all else list(args.user)
    report = run_tool(
        "momentum-analytics-rebuild",
        settings,
        lambda: asyncio.run(run(settings, user_ids, args.after)),
    )
    print(json.dumps(report.as_dict()), file=sys.stdout, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
