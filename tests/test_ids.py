"""Ids sort in the order they are made, within a millisecond too (cursors page by id)."""

import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ulid import ULID

from couponsvc import ids
from couponsvc.ids import new_id


def test_ids_made_in_a_tight_loop_strictly_increase():
    ids = [new_id("red") for _ in range(10_000)]
    assert all(a < b for a, b in zip(ids, ids[1:], strict=False))
    assert len(ids[0]) == len("red_") + 26


def test_ids_made_on_several_threads_are_one_strictly_increasing_sequence():
    """Each thread's ids increase, and so does the sequence in the order they were drawn
    (a lock around the drawing records that order)."""
    drawn: list[str] = []
    order = threading.Lock()
    per_thread: dict[int, list[str]] = {}
    start = threading.Barrier(8)

    def draw(n: int) -> None:
        mine = per_thread.setdefault(n, [])
        start.wait()
        for _ in range(2_000):
            with order:
                value = new_id("evt")
                drawn.append(value)
            mine.append(value)
            value = new_id("evt")  # also drawn outside the recording lock, racing the others
            mine.append(value)

    threads = [threading.Thread(target=draw, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(a < b for a, b in zip(drawn, drawn[1:], strict=False))
    for mine in per_thread.values():
        assert all(a < b for a, b in zip(mine, mine[1:], strict=False))
    everything = [value for mine in per_thread.values() for value in mine]
    assert len(set(everything)) == len(everything) == 8 * 4_000



@given(st.integers(0, (1 << 48) - 1), st.binary(min_size=10, max_size=10))
def test_an_id_is_written_as_the_ulid_library_writes_it(ms, random):
    """A millisecond and a random part are written as python-ulid writes the ULID made of
    them, for any 48 and 80 bits (`ids` draws and writes its own, for speed)."""
    written = ids._time_text(ms) + ids._random_text(int.from_bytes(random, "big"))
    assert written == str(ULID.from_bytes(ms.to_bytes(6, "big") + random))


def test_within_a_millisecond_the_random_part_counts_up_and_stops_at_its_end(monkeypatch):
    state = ids._State()
    monkeypatch.setattr(ids, "_state", state)
    monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_000_000 * 1_000_000)
    first, second = new_id("x"), new_id("x")
    assert int(ULID.from_str(second[2:])) == int(ULID.from_str(first[2:])) + 1
    state.random = (1 << 80) - 1
    with pytest.raises(OverflowError):
        new_id("x")


def test_the_clock_going_back_does_not_take_the_ids_back(monkeypatch):
    state = ids._State()
    monkeypatch.setattr(ids, "_state", state)
    readings = iter([2_000, 1_000, 3_000])
    monkeypatch.setattr(time, "time_ns", lambda: next(readings) * 1_000_000)
    drawn = [new_id("x") for _ in range(3)]
    assert drawn == sorted(drawn) and len(set(drawn)) == 3
    assert [ULID.from_str(value[2:]).milliseconds for value in drawn] == [2_000, 2_000, 3_000]
