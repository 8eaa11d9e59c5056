"""``momentum-ops``: the operations CLI (docs/operations.md, "Operations CLI").

Every command reads the same settings as the services (the environment), then the
``stack.env`` a running ``make up`` writes, so it works as written against ``make up``.
A failure is one line on stderr and exit status 1, within the store timeout when a
store is unreachable.
"""

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from momentum_analytics.settings import AnalyticsSettings
from momentum_libs.cli import run_tool, tool_settings
from momentum_libs.dead_letters import DeadLetter, DeadLetters
from momentum_libs.logging import configure_logging
from momentum_libs.partitions import partition_streams, partitions_key
from momentum_libs.redis_client import RedisClient, redis_client
from momentum_libs.settings import ServiceSettings, StreamConsumerSettings
from momentum_tracking.settings import TrackingSettings
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from momentum_ops import backup as embedded
from momentum_ops.status import StreamStatus, stream_status

T = TypeVar("T")
NAME = "momentum-ops"

app = typer.Typer(
    name=NAME,
    help="Operate Momentum: stream status, dead letters, analytics rebuild, embedded backup.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
dead_letters = typer.Typer(
    help="A consumer group's dead letters: list, show, replay (to that group only), drop.",
    no_args_is_help=True,
)
app.add_typer(dead_letters, name="dead-letters")

out = Console()
err = Console(stderr=True)

GroupArg = Annotated[str, typer.Argument(help="The consumer group (analytics, tracking).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
PartitionOpt = Annotated[
    int | None,
    typer.Option(
        help="The partition whose dead letters (a log of MOMENTUM_EVENTS_PARTITIONS > 1)."
    ),
]


def consuming_services() -> dict[str, StreamConsumerSettings]:
    """Each consumer group's settings, as its service reads them."""
    found: list[StreamConsumerSettings] = [
        tool_settings(AnalyticsSettings),
        tool_settings(TrackingSettings),
    ]
    return {settings.consumer_group: settings for settings in found}


def with_redis(settings: ServiceSettings, work: Callable[[RedisClient], Awaitable[T]]) -> T:
    async def main() -> T:
        redis = redis_client(settings.redis_url, settings.store_timeout_ms)
        try:
            return await work(redis)
        finally:
            await redis.aclose()

    return run_tool(NAME, settings, lambda: asyncio.run(main()))


def group_settings(group: str) -> StreamConsumerSettings:
    services = consuming_services()
    if group not in services:
        known = ", ".join(sorted(services))
        print(f"{NAME}: unknown consumer group {group!r}; the groups are {known}", file=sys.stderr)
        raise typer.Exit(1)
    return services[group]


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int | None, int], None]]:
    """A progress bar on stderr when it is a terminal; yields ``update(total, advance)``."""
    with Progress(console=err, disable=not err.is_terminal) as progress:
        task = progress.add_task(description, total=None)

        def update(total: int | None, advance: int) -> None:
            if total is not None:
                progress.update(task, total=total)
            progress.advance(task, advance)

        yield update


# -- status ----------------------------------------------------------------------------


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Streams and consumer groups: lag, pending, consumers, dead letters.

    For the event stream (each partition of a partitioned log) and each group's replay
    stream(s): its length, and per consumer group its lag (entries not yet delivered),
    pending (delivered, not acknowledged) and consumers; then each group's count of dead
    letters, and the partition count the log recorded beside the configured one."""
    services = consuming_services()
    first = next(iter(services.values()))
    partitions = partition_streams(first.events_stream, first.events_partitions)

    async def gather(redis: RedisClient) -> tuple[list[StreamStatus], dict[str, int], str]:
        replays = [s.replay_stream_of(p) for s in services.values() for p in partitions]
        found = [await stream_status(redis, stream) for stream in [*partitions, *replays]]
        dead = {
            g: sum([await d.count() for d in DeadLetters.every(s, redis)])
            for g, s in services.items()
        }
        recorded = await redis.get(partitions_key(first.events_stream))
        return found, dead, "(none)" if recorded is None else _decoded(recorded)

    streams, dead, recorded = with_redis(first, gather)
    if as_json:
        body = {
            "streams": [s.as_dict() for s in streams],
            "dead_letters": dead,
            "partitions": {"configured": first.events_partitions, "recorded": recorded},
        }
        print(json.dumps(body, indent=2))
        return
    table = Table("stream", "length", "group", "lag", "pending", "consumers")
    table.columns[0].overflow = "fold"  # a stream name is copied from here: never cut it
    for found in streams:
        if not found.exists:
            table.add_row(found.stream, "(none)", "", "", "", "")
        for group in found.groups or []:
            consumers = ", ".join(f"{c.name} ({c.pending} pending)" for c in group.consumers)
            lag = "?" if group.lag is None else str(group.lag)
            table.add_row(
                found.stream, str(found.length), group.name, lag, str(group.pending), consumers
            )
    out.print(table)
    for name, count in dead.items():
        out.print(f"dead letters of {name}: {count}")
    out.print(f"partitions: {first.events_partitions} configured, {recorded} recorded by the log")


def _decoded(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# -- dead letters ------------------------------------------------------------------------


def _letter_row(letter: DeadLetter) -> dict[str, Any]:
    event = letter.event
    return {
        "id": letter.id,
        "type": event.type.value if event else None,
        "user_id": event.user_id if event else None,
        "deliveries": letter.deliveries,
        "error": letter.error,
    }


@dead_letters.command("list")
def list_letters(
    group: GroupArg,
    count: Annotated[int, typer.Option(min=1, help="How many, oldest first.")] = 20,
    after: Annotated[str | None, typer.Option(help="Only entries after this id.")] = None,
    as_json: JsonOpt = False,
    partition: PartitionOpt = None,
) -> None:
    """The group's oldest dead letters: id, event type, user, deliveries, error."""
    settings = group_settings(group)
    letters = with_redis(
        settings, lambda r: DeadLetters.of(settings, r, partition).list(count, after)
    )
    rows = [_letter_row(letter) for letter in letters]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("id", "type", "user_id", "deliveries", "error")
    table.columns[0].no_wrap = True
    for row in rows:
        table.add_row(*(str(row[k] or "") for k in ("id", "type", "user_id", "deliveries")),
                      row["error"][:120])  # fmt: skip
    out.print(table)
    where = settings.dead_letters if partition is None else f"partition {partition}"
    out.print(f"{len(rows)} shown of {where}")


@dead_letters.command()
def show(
    group: GroupArg,
    entry_id: Annotated[str, typer.Argument(help="Its id.")],
    partition: PartitionOpt = None,
) -> None:
    """Every field of one dead letter, with its event parsed (JSON)."""
    settings = group_settings(group)
    letter = with_redis(settings, lambda r: DeadLetters.of(settings, r, partition).get(entry_id))
    event = letter.event
    body = {
        "id": letter.id,
        "fields": letter.fields,
        "event": event.model_dump(mode="json") if event else None,
    }
    print(json.dumps(body, indent=2))


@dead_letters.command()
def replay(
    group: GroupArg,
    entry_ids: Annotated[list[str] | None, typer.Argument(help="Their ids.")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
    partition: PartitionOpt = None,
) -> None:
    """Hand dead letters back to their group alone, removing them from the dead stream.

    They go to the group's replay stream, which only that group's service reads and
    applies (never to the event stream: every group would get them again). Fix the
    cause first: an event that fails again is dead-lettered again."""
    settings = group_settings(group)
    ids = _chosen(entry_ids, replay_all)

    async def work(redis: RedisClient) -> int:
        letters = DeadLetters.of(settings, redis, partition)
        with progress_bar(f"replaying to {group}") as update:
            todo = ids if ids is not None else [d.id for d in await _all(letters)]
            update(len(todo), 0)
            for entry_id in todo:
                await letters.replay(entry_id)
                update(None, 1)
        return len(todo)

    done = with_redis(settings, work)
    via = settings.replay_stream if partition is None else f"partition {partition}'s replay stream"
    print(f"replayed {done} dead letter(s) to {group} via {via}")


@dead_letters.command()
def drop(
    group: GroupArg,
    entry_ids: Annotated[list[str], typer.Argument(help="Their ids.")],
    partition: PartitionOpt = None,
) -> None:
    """Delete dead letters for good (an event no group should ever apply)."""
    settings = group_settings(group)

    async def work(redis: RedisClient) -> None:
        letters = DeadLetters.of(settings, redis, partition)
        for entry_id in entry_ids:
            await letters.drop(entry_id)

    with_redis(settings, work)
    print(f"dropped {len(entry_ids)} dead letter(s) of {group}")


def _chosen(entry_ids: list[str] | None, every: bool) -> list[str] | None:
    if bool(entry_ids) == every:
        print(f"{NAME}: give entry ids or --all (one of the two)", file=sys.stderr)
        raise typer.Exit(2)
    return None if every else entry_ids


async def _all(letters: DeadLetters) -> list[DeadLetter]:
    found: list[DeadLetter] = []
    while batch := await letters.list(500, found[-1].id if found else None):
        found.extend(batch)
    return found


# -- analytics rebuild ---------------------------------------------------------------------


@app.command("analytics-rebuild")
def analytics_rebuild(
    every: Annotated[bool, typer.Option("--all", help="Every user tracking knows.")] = False,
    users: Annotated[
        list[str] | None, typer.Option("--user", metavar="ID", help="A user id (repeatable).")
    ] = None,
) -> None:
    """Recompute analytics' projections from tracking's data.

    Reads tracking's database read-only while analytics keeps serving; prints
    {"users","logs","seconds","logs_per_second"}."""
    # Imported here: the rebuild brings FastAPI along (a second of start-up the other
    # commands need not pay).
    from momentum_analytics.rebuild.cli import run as run_rebuild

    chosen = _chosen(users, every)
    settings = tool_settings(AnalyticsSettings)
    configure_logging("analytics-rebuild", "WARNING", settings.log_json)

    def work() -> dict[str, Any]:
        with progress_bar("rebuilding analytics") as update:
            report = asyncio.run(
                run_rebuild(
                    settings,
                    chosen,
                    on_start=lambda total: update(total, 0),
                    on_user_done=lambda: update(None, 1),
                )
            )
        return report.as_dict()

    print(json.dumps(run_tool(NAME, settings, work)))


# -- embedded backup ---------------------------------------------------------------------

DirArg = Annotated[Path, typer.Argument(help="A directory.")]


@app.command("backup")
def backup_data_dir(destination: DirArg) -> None:
    """Copy the embedded stack's data into a new directory (make up stopped).

    Copies $MOMENTUM_DATA_DIR's mongodb/ (nx-27017's SQLite files) and keys/."""
    settings = ServiceSettings()
    copied = run_tool(NAME, settings, lambda: embedded.backup(settings.data_dir, destination))
    print(f"backed up {', '.join(copied)} of {settings.data_dir} to {destination}")


@app.command("restore")
def restore_data_dir(source: DirArg) -> None:
    """Replace the embedded stack's data by a backup (make up stopped).

    Then start `make up` and run `momentum-ops analytics-rebuild --all`."""
    settings = ServiceSettings()
    restored = run_tool(NAME, settings, lambda: embedded.restore(source, settings.data_dir))
    print(f"restored {', '.join(restored)} of {source} into {settings.data_dir}")


def main() -> None:
    app()
