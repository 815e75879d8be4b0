"""The multi-host test: network namespaces of this machine as hosts (`network.py`), the
programs each runs (`services.py`), and the test (`test_multihost.py`)."""
