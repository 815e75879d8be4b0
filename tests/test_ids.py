"""Ids sort in the order they are made, within a millisecond too (cursors page by id)."""

import threading

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

