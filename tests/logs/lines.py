"""Reading log output back: the JSON lines of a process's standard error or log file."""

from __future__ import annotations

import json


def json_lines(text: str) -> list[dict]:
    """Every line that is a JSON object (other handlers may write plain lines beside them)."""
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found
