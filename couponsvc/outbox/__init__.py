"""The outbox: the one writer of events and their deliveries.

`emit` writes events and, in the same transaction, their deliveries (`fanout.py`, the
one statement of the fan-out rule); `payload.py` builds the coupon events' data;
`feed.py` reads events in commit order (`GET /events`) and `positions.py` numbers
them; `hold.py` holds and releases a disabled integration's deliveries; `wakeup.py`
wakes the drains (`couponsvc/deliveries/`) after the commit.
"""
