"""The `couponsvc` console script (also `flask --app couponsvc`)."""

from __future__ import annotations

import os
import sys

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from . import campaigns
from .extensions import db
from .principal import ROLES, create_key


def register_cli(app: Flask) -> None:
    for command in (create_key_command, create_admin, close_due, demo, rotate_data_keys, worker,
                    partitions, *KEY_COMMANDS):
        app.cli.add_command(command)


@click.command("create-key")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--merchant", "merchant_id", default=None, help="merchant id (manager, scanner)")
@click.option("--store", "store_id", default=None, help="pin a scanner key to this store")
@click.option("--label", default="created from the command line")
@with_appcontext
def create_key_command(role, merchant_id, store_id, label):
    """Create an API key and print it alone on standard output (it is shown only once)."""
    from .errors import DomainError

    try:
        created = create_key(db.session, role=role, merchant_id=merchant_id, store_id=store_id,
                             label=label)
    except DomainError as error:
        raise click.ClickException(error.detail) from None
    db.session.commit()
    click.echo(created.secret)


@click.command("create-admin")
@click.option("--email", required=True, help="the operator's e-mail (what they sign in with)")
@with_appcontext
def create_admin(email):
    """Create an operator of the admin pages (sees every merchant), or set their password.

    The password is read from COUPONSVC_ADMIN_PASSWORD, else asked for (twice, not shown);
    never from the command line, where other users and the shell history would see it.
    """
    from .domain_error import DomainError
    from .people import MIN_PASSWORD_LENGTH, set_operator_password

    password = os.environ.get("COUPONSVC_ADMIN_PASSWORD")
    if not password:
        password = click.prompt(f"Password (at least {MIN_PASSWORD_LENGTH} characters)",
                                hide_input=True, confirmation_prompt=True, err=True)
    try:
        user, created = set_operator_password(db.session, email, password)
    except DomainError as error:
        db.session.rollback()
        fields = error.extra.get("errors") or {}
        raise click.ClickException("; ".join(f"{name}: {' '.join(messages)}"
                                             for name, messages in fields.items())
                                   or error.detail) from None
    db.session.commit()
    click.echo(f"operator {user.email} {'created' if created else 'password set'}", err=True)


@click.command("close-due")
@with_appcontext
def close_due():
    """Close every campaign whose sales_end has passed: tipped → ended, untipped → failed."""
    closed = 0
    for campaign_id in campaigns.due_campaign_ids(db.session):
        status = campaigns.close_campaign(db.session, campaign_id)
        db.session.commit()
        if status:
            closed += 1
            click.echo(f"{campaign_id} {status}")
    click.echo(f"closed {closed} campaign(s)", err=True)


@click.command("partitions")
@with_appcontext
def partitions():
    """Run the daily upkeep now: the next months' partitions made, those older than
    COUPONSVC_RETENTION_MONTHS dropped (never one holding an open delivery), expired
    idempotency records and look-up blocks deleted (docs/operations.md)."""
    from .retention import run_as_configured
    from .timeutil import utcnow

    done = run_as_configured(db.session, utcnow(), current_app.config)
    for name in done.partitions.created:
        click.echo(f"created {name}")
    for name in done.partitions.dropped:
        click.echo(f"dropped {name}")
    for name, why in done.partitions.kept:
        click.echo(f"kept {name}: {why}")
    click.echo(f"{done.partitions.moved} row(s) moved out of DEFAULT partitions; "
               f"{done.idempotency_keys} expired idempotency record(s) and "
               f"{done.lookup_blocks} ended look-up block(s) deleted", err=True)


@click.command("demo")
@with_appcontext
def demo():
    """Create demo data (once) and print fresh keys to try the API with."""
    from .demo import load_demo
    from .qr_keys import keyring

    for line in load_demo(db.session, public_url=current_app.config["PUBLIC_URL"],
                          max_window=current_app.config["MAX_REVERSAL_WINDOW"], qr_kid=keyring().current_kid):
        click.echo(line)


@click.command("new-qr-key")
def new_qr_key():
    """Print a new Ed25519 signing key for COUPONSVC_QR_SIGNING_KEYS (put it first to rotate)."""
    from .qr.keyring import generate_private_key_text

    click.echo(generate_private_key_text())


@click.command("new-data-key")
def new_data_key():
    """Print a new Fernet key for COUPONSVC_DATA_KEYS (put it first, then rotate-data-keys)."""
    from .data_keys import new_key

    click.echo(new_key())


KEY_COMMANDS = (new_qr_key, new_data_key)
"""Commands that need no configuration: `main()` runs them without building the app."""


@click.command("rotate-data-keys")
@with_appcontext
def rotate_data_keys():
    """Re-encrypt every stored secret under the first of COUPONSVC_DATA_KEYS (credentials
    older versions stored in the clear included); then older keys may be dropped."""
    from .adapters import installed
    from .data_key_rotation import rotate_data_keys as rotate
    from .data_keys import DataKeyError
    from .qr_keys import data_keys

    try:
        counts = rotate(db.session, installed(), data_keys())
    except DataKeyError as error:
        raise click.ClickException(f"{error}: keep every key still in use in COUPONSVC_DATA_KEYS, "
                                   "after the new first one") from None
    for table, count in counts.items():
        click.echo(f"{table}: {count} value(s) re-encrypted under the first data key", err=True)


@click.command("worker")
@click.option("--burst", is_flag=True, help="stop when the queues are empty")
@click.option("--processes", default=1, show_default=True, type=click.IntRange(1, 64),
              help="worker processes to run side by side")
@with_appcontext
def worker(burst, processes):
    """Run RQ workers and the periodic jobs: the relay sweep (which also sends
    retries when they come due) and close-due. Needs REDIS_URL."""
    from workers.run import run_processes, run_worker

    if not current_app.config.get("REDIS_URL"):
        raise click.ClickException("REDIS_URL is not set: jobs run inside the serving process")
    if processes > 1:
        sys.exit(run_processes(processes, ["--burst"] if burst else [], current_app))
    sys.exit(run_worker(current_app, burst=burst))


def main() -> None:
    """The `couponsvc` console script."""
    from . import create_app

    cli = FlaskGroup(create_app=lambda: create_app(), add_default_commands=True,
                     add_version_option=False, help="couponsvc: group-buy coupon service")
    for command in KEY_COMMANDS:  # found before the app is built: they work unconfigured
        cli.add_command(command)
    cli.main(prog_name="couponsvc")


if __name__ == "__main__":
    main()
