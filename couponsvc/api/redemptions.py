"""Scanning at the till: validate, redeem, reverse; and the record of redemptions."""

from __future__ import annotations

from functools import lru_cache

import orjson
from flask import Response, current_app, jsonify
from flask.views import MethodView
from sqlalchemy import select
from werkzeug.urls import iri_to_uri

from .. import codes
from .. import redeem as till
from ..coupons import redemptions_of
from ..errors import DomainError
from ..extensions import db
from ..i18n import translate
from ..models import Campaign, Redemption, RedemptionAttempt
from ..principal import MANAGER, PLATFORM, SCANNER, Principal
from ..public_url import base_url
from ..qr_keys import keyring
from ..ratelimit import LookupBudget, budget_subjects, client_address, guarded_lookup
from ..redeem import batch as offline
from ..redeem.redeem import redeemed_from
from ..redeem.write import SNAPSHOT
from ..timeutil import utcnow
from .bearer import current_identity, current_principal, requires, requires_live_key_in_write
from .blueprint import Blueprint
from .created import created_location
from .links import coupon_dict
from .pagination import cursor_page
from .schemas.common import page_schema
from .schemas.redemptions import (
    AttemptListArgs,
    AttemptRow,
    BatchIn,
    BatchOut,
    RedemptionListArgs,
    RedemptionOut,
    RedemptionRow,
    ReversalOut,
    ReverseIn,
    ScanIn,
    ValidationOut,
)
from .unit_of_work import (
    after_rollback,
    idempotency_claim,
    register_renderer,
    single_statement,
    statement_connection,
    unit_of_work,
)

blp = Blueprint("redemptions", __name__, url_prefix="/api/v1", description="Redemption at the till")

TILL = (PLATFORM, MANAGER, SCANNER)


def _scan(data: dict) -> till.Scan:
    return till.Scan(principal=current_identity(), client_address=client_address(), **data)


def scanned(principal: Principal, data: dict, address: str) -> till.Scan:
    """The redeem's scan: what `SCAN_IN` loaded from the body, from whom, from where."""
    return till.Scan(principal=principal, client_address=address,
                     budgets=budget_subjects(principal.key_id, address), **data)


SCAN_IN = ScanIn()  # the redeem's body (the redeem's lane loads it with the same schema)


def _refused(scan: till.Scan, action: str, error: DomainError) -> None:
    """Keep a record of the refusal, written after the rollback of the attempt."""
    after_rollback(lambda: till.record_refusal(db.session, scan, action, error))


@blp.route("/redemptions/validate")
class Validate(MethodView):
    @requires(*TILL)
    @unit_of_work
    @blp.arguments(ScanIn())
    @blp.response(200, ValidationOut)
    def post(self, data):
        scan = _scan(data)
        try:
            with guarded_lookup(scan.principal.key_id):
                result = till.validate(db.session, scan, keyring())
        except DomainError as error:
            _refused(scan, "validate", error)
            raise
        if not result.ok:
            till.record_refusal(db.session, scan, "validate", DomainError(result.code))
        coupon = result.coupon
        kid = db.session.get(Campaign, coupon.campaign_id).qr_kid
        return {"ok": result.ok, "code": result.code, "detail": translate(result.detail),
                "coupon": coupon_dict(coupon, utcnow(), kid, redemptions_of(db.session, coupon.code))}


def redeemed_body(done: till.Redeemed) -> dict:
    """What `RedemptionOut().dump(done)` gives, in its order, written out: the schema's
    dump cost a tenth of a redeem (tests/api/test_redeem_answer.py holds the two equal)."""
    coupon = done.coupon
    return {
        "id": done.id,
        "coupon": {
            "code": coupon["code"], "display": coupon["display"], "status": coupon["status"],
            "uses_total": coupon["uses_total"], "uses_left": coupon["uses_left"],
            "valid_from": coupon["valid_from"].isoformat(),
            "valid_until": coupon["valid_until"].isoformat(),
            "campaign_id": coupon["campaign_id"], "order_id": coupon["order_id"],
        },
        "store_id": done.store_id,
        "uses": done.uses,
        "device_id": done.device_id,
        "redeemed_at": done.redeemed_at.isoformat(),
    }


def _redeemed_answer(done: till.Redeemed) -> Response:
    """The 201 of a redemption, drawn the same way when it is first given and when an
    idempotent redeem's stored snapshot is replayed (`redeem.redeemed_from`)."""
    return Response(redeemed_json(done), status=201, headers={"Location": redemption_location(done.id)},
                    mimetype="application/json")


def redeemed_json(done: till.Redeemed) -> bytes:
    """The 201's body, compact with a newline after as `jsonify` lays it out, non-ASCII
    as UTF-8, written by orjson: the standard library's encoder cost the redeem's lane 3% of
    its instructions in the app (docs/benchmarks.md). Also drawn by the redeem's lane
    (`redeem_lane.py`). The body holds strings, integers and None only, which both write
    alike (tests/api/test_redeem_answer.py)."""
    return orjson.dumps(redeemed_body(done), option=orjson.OPT_APPEND_NEWLINE)


def redemption_location(redemption_id: str) -> str:
    """The 201's `Location` (`created.py`), as werkzeug sends it (through `iri_to_uri`,
    which leaves it as it is then): the base is made a URI once, a redemption's id needs
    no quoting."""
    return _redemptions_uri(base_url()) + redemption_id


@lru_cache(maxsize=4)
def _redemptions_uri(base: str) -> str:
    return iri_to_uri(created_location(base, "redemptions/"))


register_renderer(SNAPSHOT, lambda snapshot: _redeemed_answer(redeemed_from(snapshot)))


@blp.route("/redemptions")
class Redemptions(MethodView):
    @requires_live_key_in_write(*TILL)
    @unit_of_work
    @single_statement
    @blp.arguments(SCAN_IN)
    @blp.response(201, RedemptionOut)
    def post(self, data):
        scan = scanned(current_identity(), data, client_address())
        try:
            with guarded_lookup(scan.principal.key_id, in_statement=True):
                done = till.redeem(db.session, scan, keyring(), idempotency_claim(),
                                   statement_connection())
        except DomainError as error:
            _refused(scan, "redeem", error)
            raise
        return _redeemed_answer(done)

    @requires(PLATFORM, MANAGER, SCANNER)
    @blp.arguments(RedemptionListArgs(), location="query")
    @blp.response(200, page_schema(RedemptionRow, "RedemptionPage"))
    def get(self, args):
        """Successful redemptions, newest last; refusals are at /redemption-attempts."""
        principal = current_principal()
        query = select(Redemption)
        if principal.role != PLATFORM:
            query = query.where(Redemption.merchant_id == principal.merchant_id)
        if principal.store_id:
            query = query.where(Redemption.store_id == principal.store_id)
        if args.get("code"):
            query = query.where(Redemption.coupon_code == codes.canonical(args["code"])
                                if codes.is_valid(args["code"]) else False)
        if args.get("store_id"):
            query = query.where(Redemption.store_id == args["store_id"])
        return cursor_page(query, Redemption.id, after=args["after"], limit=args["limit"])


@blp.route("/redemptions/batch")
class Batch(MethodView):
    @requires(MANAGER, SCANNER)
    @unit_of_work
    @blp.arguments(BatchIn())
    @blp.response(200, BatchOut)
    def post(self, data):
        principal = current_principal()
        outcomes = offline.upload(db.session, principal, keyring(),
                                  [offline.Upload(**item) for item in data["items"]],
                                  lookups=LookupBudget(principal.key_id), client_address=client_address())
        # Plain members: drawn as they are, not through BatchOut again (500 of them; the
        # OpenAPI answer tests hold them to it).
        return jsonify({"items": [{**vars(outcome), "detail": translate(outcome.detail)}
                                  for outcome in outcomes]})


@blp.route("/redemptions/<redemption_id>")
class RedemptionById(MethodView):
    @requires(*TILL)
    @blp.response(200, RedemptionRow)
    def get(self, redemption_id):
        """One redemption, reversed or not; a pinned scanner sees its own store's only."""
        return till.find_redemption(db.session, current_principal(), redemption_id)


@blp.route("/redemptions/<redemption_id>/reverse")
class Reverse(MethodView):
    @requires(*TILL)
    @unit_of_work
    @blp.arguments(ReverseIn())
    @blp.response(200, ReversalOut)
    def post(self, data, redemption_id):
        done = till.reverse(db.session, current_principal(), redemption_id, data["reason"],
                            default_window=current_app.config["DEFAULT_REVERSAL_WINDOW"],
                            max_window=current_app.config["MAX_REVERSAL_WINDOW"])
        r, coupon = done.redemption, done.coupon
        return {"id": r.id, "coupon": coupon_dict(coupon, utcnow(), None), "store_id": r.store_id,
                "uses": r.uses, "redeemed_at": r.redeemed_at, "reversed_at": r.reversed_at,
                "reversal_reason": r.reversal_reason}


@blp.route("/redemption-attempts")
class Attempts(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.arguments(AttemptListArgs(), location="query")
    @blp.response(200, page_schema(AttemptRow, "AttemptPage"))
    def get(self, args):
        """Refused validates, redeems and offline scans: who tried what, where, and why."""
        principal = current_principal()
        query = select(RedemptionAttempt)
        if principal.role != PLATFORM:
            query = query.where(RedemptionAttempt.merchant_id == principal.merchant_id)
        for name, column in (("reason", RedemptionAttempt.reason), ("store_id", RedemptionAttempt.store_id),
                             ("api_key_id", RedemptionAttempt.api_key_id)):
            if args.get(name):
                query = query.where(column == args[name])
        if args.get("code"):
            query = query.where(RedemptionAttempt.coupon_code == (
                codes.canonical(args["code"]) if codes.is_valid(args["code"]) else args["code"]))
        page = cursor_page(query, RedemptionAttempt.id, after=args["after"], limit=args["limit"],
                           integer=True)
        return page
