"""Coupons: read, void, QR images, and what offline scanners need (keys, revocations)."""

from __future__ import annotations

import hashlib

from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from .. import codes
from ..coupons import find_coupon, redemptions_of, revocations_after, void_coupon
from ..errors import DomainError
from ..extensions import db
from ..models import Campaign, Coupon
from ..principal import MANAGER, PLATFORM, SCANNER
from ..qr import render
from ..qr.keyring import UnknownKeyError
from ..qr_keys import coupon_payload, keyring
from ..ratelimit import guarded_lookup
from ..timeutil import utcnow
from .bearer import current_principal, requires
from .links import coupon_dict
from .pagination import integer_cursor
from .schemas.common import ListArgs, page_schema
from .schemas.coupons import CouponOut, QrArgs, RevocationOut, VoidIn
from .unit_of_work import unit_of_work

blp = Blueprint("coupons", __name__, url_prefix="/api/v1", description="Coupons and their QR codes")

QR_CACHE = "public, max-age=31536000, immutable"


@blp.route("/coupons/<code>")
class CouponByCode(MethodView):
    @requires(PLATFORM, MANAGER, SCANNER)
    @blp.response(200, CouponOut)
    def get(self, code):
        principal = current_principal()
        with guarded_lookup(principal.key_id):
            coupon = find_coupon(db.session, principal, code)
        kid = db.session.get(Campaign, coupon.campaign_id).qr_kid
        return coupon_dict(coupon, utcnow(), kid, redemptions_of(db.session, coupon.code))


@blp.route("/coupons/<code>/void")
class VoidCoupon(MethodView):
    @requires(PLATFORM, MANAGER)
    @unit_of_work
    @blp.arguments(VoidIn(), required=False)
    @blp.response(200, CouponOut)
    def post(self, data, code):
        coupon = void_coupon(db.session, current_principal(), code, (data or {}).get("reason", ""))
        kid = db.session.get(Campaign, coupon.campaign_id).qr_kid
        return coupon_dict(coupon, utcnow(), kid, redemptions_of(db.session, coupon.code))


def _qr_response(code: str, scale: int | None, kind: str) -> Response:
    """The coupon's QR image; public (a buyer's phone loads it), cacheable forever."""
    with guarded_lookup(None):
        coupon = _public_coupon(code)
    try:
        payload = coupon_payload(coupon, db.session.get(Campaign, coupon.campaign_id).qr_kid)
    except UnknownKeyError:
        raise DomainError("invalid_state", "the key that signed this deal's coupons was removed; "
                          "their QR codes cannot be drawn again") from None
    scale = scale or render.DEFAULT_SCALE
    etag = hashlib.sha256(f"{kind}:{scale}:{payload}".encode()).hexdigest()[:32]
    if etag in request.if_none_match:
        response = Response(status=304)
    elif kind == "png":
        response = Response(render.png(payload, scale), mimetype="image/png")
    else:
        response = Response(render.svg(payload, scale), mimetype="image/svg+xml")
    response.set_etag(etag)
    response.headers["Cache-Control"] = QR_CACHE
    return response


def _public_coupon(code: str) -> Coupon:
    try:
        canonical = codes.canonical(code)
    except codes.CodeError:
        raise DomainError("invalid_code", "the code is mistyped") from None
    coupon = db.session.get(Coupon, canonical)
    if coupon is None:
        raise DomainError("coupon_not_found")
    return coupon


@blp.route("/coupons/<code>/qr.png")
class QrPng(MethodView):
    @blp.arguments(QrArgs(), location="query")
    @blp.response(200, content_type="image/png")
    @blp.doc(security=[])
    def get(self, args, code):
        return _qr_response(code, args["scale"], "png")


@blp.route("/coupons/<code>/qr.svg")
class QrSvg(MethodView):
    @blp.arguments(QrArgs(), location="query")
    @blp.response(200, content_type="image/svg+xml")
    @blp.doc(security=[])
    def get(self, args, code):
        return _qr_response(code, args["scale"], "svg")


@blp.route("/qr-keys")
class QrKeys(MethodView):
    @blp.doc(security=[])
    @blp.response(200)
    def get(self):
        response = current_app.make_response(keyring().jwks())
        response.headers["Cache-Control"] = "public, max-age=300"
        return response


@blp.route("/revocations")
class Revocations(MethodView):
    @requires(PLATFORM, MANAGER, SCANNER)
    @blp.arguments(ListArgs(), location="query")
    @blp.response(200, page_schema(RevocationOut, "RevocationPage"))
    def get(self, args):
        """Codes voided or refunded, oldest first. Every page answers `next`, the last one
        included: ask again later with `?after=<next>` for only what is new."""
        principal = current_principal()
        after = None if args["after"] is None else integer_cursor(args["after"])
        rows, resume = revocations_after(db.session, None if principal.role == PLATFORM else principal.merchant_id,
                                         after, args["limit"])
        return {"data": rows, "next": str(resume)}
