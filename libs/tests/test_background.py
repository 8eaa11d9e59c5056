"""The pause of a failing background loop (relay, consumer), and the tasks of a process."""

import asyncio

from momentum_libs.background import FIRST_PAUSE_S, BackgroundTasks, next_pause


def test_the_pause_doubles_after_each_failure_up_to_its_cap() -> None:
    pauses = [FIRST_PAUSE_S]
    for _ in range(8):
        pauses.append(next_pause(pauses[-1], 5.0))
    assert pauses[:4] == [0.1, 0.2, 0.4, 0.8]
    assert pauses[-3:] == [5.0, 5.0, 5.0]  # a store that stays down: retried every cap
    assert max(pauses) == 5.0


async def test_a_task_that_ends_by_itself_is_forgotten_and_the_rest_are_stopped() -> None:
    tasks = BackgroundTasks()
    finished = asyncio.Event()
    stopped = asyncio.Event()

    async def job() -> None:
        finished.set()

    async def loop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    for n in range(100):
        tasks.start(job(), f"job-{n}")
    tasks.start(loop(), "loop")
    await finished.wait()
    await asyncio.sleep(0)  # the done callbacks run
    assert [t.get_name() for t in tasks._tasks] == ["loop"]
    await tasks.stop()
    assert stopped.is_set()
