"""Integration credentials at rest: split from the config, encrypted under the data keys.

An adapter declares its credential fields once (`integrations.adapter.credential`).
An integration stores the rest of its config as JSON (`Integration.config`, what
answers may show) and the credentials as one JSON object encrypted with the first
data key (`Integration.credentials`, `fernet:…`). The full config exists only in
memory: when a merchant changes the config and when a drain calls the adapter.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations.adapter import Adapter, secret_fields

from .data_keys import DataKeys
from .models import Integration


def seal(adapter: Adapter, config: dict[str, Any], keys: DataKeys) -> tuple[dict[str, Any], str | None]:
    """`config` as stored: the fields that may be shown, and the credentials encrypted
    (None when the adapter declares none)."""
    names = secret_fields(adapter.config_schema)
    shown = {name: value for name, value in config.items() if name not in names}
    hidden = {name: value for name, value in config.items() if name in names}
    return shown, (keys.encrypt(json.dumps(hidden, sort_keys=True)) if hidden else None)


def unseal(config: dict[str, Any], credentials: str | None, keys: DataKeys) -> dict[str, Any]:
    """The full config: the stored fields and the decrypted credentials.

    Raises `DataKeyError` when no configured data key decrypts them.
    """
    if credentials is None:
        return dict(config)
    return {**config, **json.loads(keys.decrypt(credentials))}


def store(integration: Integration, adapter: Adapter, config: dict[str, Any], keys: DataKeys) -> None:
    integration.config, integration.credentials = seal(adapter, config, keys)


def full_config(integration: Integration, keys: DataKeys) -> dict[str, Any]:
    return unseal(integration.config, integration.credentials, keys)


def reseal_all(session: Session, adapters: dict[str, Adapter], keys: DataKeys) -> int:
    """Every integration's credentials encrypted under the first data key, those an
    older version left in `config` in the clear included; the number rewritten.

    An integration whose adapter is not installed here is rotated as it is (what its
    config holds in the clear stays until it is rewritten where its adapter is).
    """
    rewritten = 0
    for integration in session.execute(select(Integration).order_by(Integration.id)).scalars():
        adapter = adapters.get(integration.adapter)
        if adapter is None:
            if integration.credentials is not None:
                integration.credentials = keys.rotate(integration.credentials)
                rewritten += 1
            continue
        store(integration, adapter, full_config(integration, keys), keys)
        rewritten += 1
    session.flush()
    return rewritten
