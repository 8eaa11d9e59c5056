"""The pause of a failing background loop (relay, consumer)."""

from momentum_libs.background import FIRST_PAUSE_S, next_pause


def test_the_pause_doubles_after_each_failure_up_to_its_cap() -> None:
    pauses = [FIRST_PAUSE_S]
    for _ in range(8):
        pauses.append(next_pause(pauses[-1], 5.0))
    assert pauses[:4] == [0.1, 0.2, 0.4, 0.8]
    assert pauses[-3:] == [5.0, 5.0, 5.0]  # a store that stays down: retried every cap
    assert max(pauses) == 5.0
