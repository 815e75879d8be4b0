"""One owner for the outbox: `couponsvc/outbox/` writes every event and delivery, and it
does not import `couponsvc/deliveries/` (which drains, and imports the outbox)."""

from __future__ import annotations

import ast
import re
import traceback
from pathlib import Path

import pytest
from sqlalchemy import event

from couponsvc.extensions import db
from tests.factories import Shop

PACKAGE = Path(__file__).resolve().parent.parent / "couponsvc"


def _imports(path: Path) -> set[str]:
    """The couponsvc modules a file imports, as dotted names."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module.removesuffix(".__init__")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            found.update({base} | {f"{base}.{alias.name}" for alias in node.names})
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("couponsvc")}


def _package_imports(inside: str, of: str) -> list[str]:
    """Files of `couponsvc.<inside>` (a package or module) that import `couponsvc.<of>`."""
    root = PACKAGE / inside
    files = sorted(root.rglob("*.py")) if root.is_dir() else [root.with_suffix(".py")]
    return [str(f.relative_to(PACKAGE)) for f in files if f.exists()
            and any(name == f"couponsvc.{of}" or name.startswith(f"couponsvc.{of}.") for name in _imports(f))]


def test_the_outbox_does_not_import_the_deliveries():
    """The deliveries import the outbox (the drain's wake-up), so no cycle means this way is empty."""
    writers = ("outbox", "events", "event_log")  # the outbox, and where it lived before
    assert [f for name in writers for f in _package_imports(name, "deliveries")] == []


_WRITE = re.compile(r"^\s*(?:WITH\b.*)?INSERT\s+INTO\s+(events|deliveries)\b", re.IGNORECASE | re.DOTALL)


@pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)
def test_every_event_and_delivery_is_written_by_the_outbox(client, app):
    writers: list[tuple[str, str]] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        if not _WRITE.match(statement):
            return
        ours = [frame for frame in traceback.extract_stack()
                if "/couponsvc/" in frame.filename and "/migrations/" not in frame.filename]
        writers.append((statement.split("(")[0].strip(), ours[-1].filename if ours else "?"))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        shop = Shop(client)
        hook = client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations",
                                     {"adapter": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}},
                                     key=shop.manager), 201)
        client.ok(client.post(f"integrations/{hook['id']}/test", key=shop.manager), 202)
        coupons = shop.coupons(3)
        client.post(f"coupons/{coupons[0]['code']}/void", {"reason": "lost"}, key=shop.manager)
        client.ok(client.patch(f"integrations/{hook['id']}", {"status": "disabled"}, key=shop.manager))
        client.ok(client.post(f"campaigns/{shop.campaign['id']}/cancel", {"reason": "closed"},
                              key=shop.manager))
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert {table.split()[-1] for table, _ in writers} == {"events", "deliveries"}
    outside = sorted({where for _, where in writers if "/couponsvc/outbox/" not in where})
    assert outside == []
