"""Development secrets kept under `instance/`: the embedded default's SECRET_KEY, QR
signing key and data key, made on first use and shared by every process of it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable


def read_or_create(instance_path: str, name: str, make: Callable[[], str]) -> str:
    """The text of `<instance_path>/<name>`, written (mode 0600) from `make()` if missing.

    The new text goes to a private temporary file that is hard-linked into place, so
    processes starting together never read a half-written file and all end up with
    the text of whichever linked first.
    """
    path = os.path.join(instance_path, name)
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    os.makedirs(instance_path, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=instance_path, prefix=f".{name}.")
    try:
        with os.fdopen(descriptor, "w") as file:  # mkstemp creates it with mode 0600
            file.write(make())
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another process linked first: use its
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return _read(path)


def _read(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as file:
        return file.read().strip()
