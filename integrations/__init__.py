"""ERP and social adapters: deliver outbox events to a merchant's other systems.

A plain library for the workers: it never imports the web app (`couponsvc`) or Flask.
The interface is in `adapter.py`, the built-in adapters and the entry-point group
`couponsvc.adapters` are read by `registry.py`.
"""
