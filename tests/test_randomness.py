"""Random bytes a page at a time (`couponsvc/randomness.py`): never handed out twice, not
shared by threads or by a forked child, and a request no longer asks the OS for them."""

from __future__ import annotations

import os
import threading

from couponsvc import randomness
from tests.factories import Shop


def test_slices_follow_each_other_and_a_new_page_is_drawn_when_one_runs_out(monkeypatch):
    pages = []
    real = os.urandom

    def urandom(n):
        pages.append(real(n))
        return pages[-1]

    monkeypatch.setattr(randomness, "_local", threading.local())
    monkeypatch.setattr(os, "urandom", urandom)
    taken = [randomness.take(10) for _ in range(randomness.PAGE // 10 + 1)]
    assert len(pages) == 2 and all(len(page) == randomness.PAGE for page in pages)
    whole = b"".join(taken[:-1])
    assert whole == pages[0][:len(whole)]  # in order, none twice, none skipped
    assert taken[-1] == pages[1][:10]  # the page's rest was too short: a new page


def test_threads_draw_from_pages_of_their_own():
    taken: dict[int, list[bytes]] = {}
    start = threading.Barrier(4)

    def draw(n):
        start.wait()
        taken[n] = [randomness.take(16) for _ in range(2_000)]

    threads = [threading.Thread(target=draw, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [piece for pieces in taken.values() for piece in pieces]
    assert len(set(every)) == len(every) == 8_000


def test_a_forked_child_does_not_hand_out_what_its_parent_holds():
    randomness.take(1)  # the parent holds a page
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what it takes next
        os.close(read)
        os.write(write, randomness.take(16))
        os._exit(0)
    os.close(write)
    child = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 16
    assert child != randomness.take(16)  # the parent's next bytes, which the child would have given


def test_a_redeem_asks_the_os_for_no_random_bytes_of_its_own(client, monkeypatch):
    shop = Shop(client)
    coupons = [shop.coupon() for _ in range(6)]
    client.ok(shop.redeem(coupons[0]["code"]), 201)
    drawn = []
    real = os.urandom
    monkeypatch.setattr(os, "urandom", lambda n: drawn.append(n) or real(n))
    for coupon in coupons[1:]:
        client.ok(shop.redeem(coupon["code"]), 201)
    # a request id and two ids each: 5 redeems take about 210 bytes, a page holds 4096
    assert len(drawn) <= 1 and all(n == randomness.PAGE for n in drawn)
