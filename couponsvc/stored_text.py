"""Text a database can keep: PostgreSQL refuses a NUL character and a lone UTF-16 surrogate
in text, so such input is refused as bad input (`storable`) or kept with a replacement
character (`clean`) before it reaches a statement. No Flask here."""

from __future__ import annotations


def storable(text: str) -> bool:
    """Text a database can keep: no NUL, no lone surrogate."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clean(text: str | None) -> str:
    """`text` with what no database can keep replaced (for addresses, agents, the audit)."""
    text = (text or "").replace("\x00", "\ufffd")
    return text if storable(text) else text.encode("utf-8", "replace").decode("utf-8")
