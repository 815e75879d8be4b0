"""Coupons: read, void, QR images, and what offline scanners need (keys, revocations)."""

from __future__ import annotations

import hashlib

from flask import Response, current_app, request
from flask.views import MethodView

from ..coupons import find_coupon, redemptions_of, revocations_after, void_coupon
from ..errors import DomainError
from ..extensions import db
from ..models import Campaign, Coupon
from ..principal import MANAGER, PLATFORM, SCANNER
from ..qr import render
from ..qr.image_token import image_key, token_matches
from ..qr.keyring import UnknownKeyError
from ..qr_keys import coupon_payload, keyring
from ..ratelimit import guarded_lookup
from ..timeutil import utcnow
from .bearer import current_principal, requires
from .blueprint import Blueprint
from .links import coupon_dict
from .pagination import integer_cursor, number_token
from .schemas.common import ListArgs, page_schema
from .schemas.coupons import CouponOut, QrArgs, RevocationOut, VoidIn
from .unit_of_work import unit_of_work

blp = Blueprint("coupons", __name__, url_prefix="/api/v1", description="Coupons and their QR codes")

QR_CACHE = "public, max-age=31536000, immutable"  # the token-bearing URL
QR_CACHE_WITH_KEY = "private, max-age=300"


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


def _qr_response(code: str, args: dict, kind: str) -> Response:
    """The coupon's QR image, for the token of its `qr_url` or a key that sees it."""
    with guarded_lookup(None):
        coupon = _coupon_to_draw(code, args.get("token"))
    try:
        payload = coupon_payload(coupon, db.session.get(Campaign, coupon.campaign_id).qr_kid)
    except UnknownKeyError:
        raise DomainError("invalid_state", "the key that signed this deal's coupons was removed; "
                          "their QR codes cannot be drawn again") from None
    scale = args["scale"] or render.DEFAULT_SCALE
    etag = hashlib.sha256(f"{kind}:{scale}:{payload}".encode()).hexdigest()[:32]
    if etag in request.if_none_match:
        response = Response(status=304)
    elif kind == "png":
        response = Response(render.png(payload, scale), mimetype="image/png")
    else:
        response = Response(render.svg(payload, scale), mimetype="image/svg+xml")
    response.set_etag(etag)
    response.headers["Cache-Control"] = QR_CACHE if args.get("token") else QR_CACHE_WITH_KEY
    return response


def _coupon_to_draw(code: str, token: str | None) -> Coupon:
    """With a token, the coupon it was made for; else the coupon a Bearer key sees.

    Without either, or with a token that does not match, `coupon_not_found` whatever
    the code (real, unknown or mistyped): the image is no oracle.
    """
    if token is not None:
        key = image_key(current_app.config["SECRET_KEY"])
        coupon = db.session.get(Coupon, code) if token_matches(key, code, token) else None
        if coupon is None:  # the token is checked before the database is read
            raise DomainError("coupon_not_found")
        return coupon
    if "Authorization" not in request.headers:
        raise DomainError("coupon_not_found")
    return find_coupon(db.session, current_principal(), code)


QR_DOC = {"security": [{}, {"bearerAuth": []}],
          "description": "Needs the `token` of the coupon's `qr_url` or a key that sees the coupon; "
                         "otherwise 404 coupon_not_found, whatever the code."}


@blp.route("/coupons/<code>/qr.png")
class QrPng(MethodView):
    @blp.arguments(QrArgs(), location="query")
    @blp.response(200, content_type="image/png")
    @blp.alt_response(304, description="Not Modified: `If-None-Match` names the image's ETag")
    @blp.doc(**QR_DOC)
    def get(self, args, code):
        return _qr_response(code, args, "png")


@blp.route("/coupons/<code>/qr.svg")
class QrSvg(MethodView):
    @blp.arguments(QrArgs(), location="query")
    @blp.response(200, content_type="image/svg+xml")
    @blp.alt_response(304, description="Not Modified: `If-None-Match` names the image's ETag")
    @blp.doc(**QR_DOC)
    def get(self, args, code):
        return _qr_response(code, args, "svg")


JWKS = {"type": "object", "required": ["keys"], "properties": {"keys": {"type": "array", "items": {
    "type": "object", "required": ["kty", "kid"], "additionalProperties": True,
    "properties": {"kty": {"type": "string"}, "crv": {"type": "string"}, "kid": {"type": "string"},
                   "x": {"type": "string"}, "use": {"type": "string"}, "alg": {"type": "string"}}}}}}


@blp.route("/qr-keys")
class QrKeys(MethodView):
    @blp.doc(security=[])
    @blp.response(200)
    @blp.doc(responses={"200": {"description": "A JSON Web Key Set (RFC 7517) of the Ed25519 public keys",
                                "content": {"application/json": {"schema": JWKS, "example": {"keys": [
        {"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}}}}})
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
        after = None if args["after"] is None else integer_cursor(args["after"], "revocations")
        rows, resume = revocations_after(db.session, principal.merchant_scope, after, args["limit"])
        return {"data": rows, "next": number_token("revocations", resume)}
