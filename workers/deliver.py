"""The delivery job: drain one integration's due deliveries (couponsvc/deliveries/drain.py)."""

from __future__ import annotations

from flask import Flask, current_app

from couponsvc import tasks
from couponsvc.deal_pages.delivery_posters import AppPosters
from couponsvc.deal_pages.links import link_settings
from couponsvc.deliveries.channel_limits import ChannelLimiter
from couponsvc.deliveries.deal_share import Sharing
from couponsvc.deliveries.drain import drain as drain_integration
from couponsvc.extensions import db
from couponsvc.qr_keys import data_keys

from .job import job

LIMITER = "couponsvc.channel_limiter"


@job(tasks.DRAIN)
def drain(integration_id: str, token: str) -> int:
    app = current_app._get_current_object()
    config = app.config
    return drain_integration(db.session, integration_id, token, keys=data_keys(),
                             allow_private_targets=config["ALLOW_PRIVATE_WEBHOOK_TARGETS"],
                             disable_failing_after=config["DISABLE_FAILING_AFTER"],
                             limiter=channel_limiter(app), sharing=sharing(app))


def channel_limiter(app: Flask) -> ChannelLimiter:
    """One per process: its counts are in Redis (REDIS_URL), or in this process without it."""
    found = app.extensions.get(LIMITER)
    if found is None:
        found = app.extensions.setdefault(LIMITER, ChannelLimiter.from_url(app.config.get("REDIS_URL")))
    return found


def sharing(app: Flask) -> Sharing:
    """The deal link's settings and the poster drawing, for the social adapters."""
    links = link_settings()
    return Sharing(public_base=links.public_base, deployment_template=links.deployment_template,
                   secret_key=app.config["SECRET_KEY"], posters=AppPosters(app, links))
