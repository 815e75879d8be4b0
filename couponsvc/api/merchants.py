"""Merchants, their stores and API keys."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from sqlalchemy import select

from .. import merchants
from ..extensions import db
from ..models import ApiKey, Merchant, Store
from ..principal import MANAGER, PLATFORM, create_key, revoke_key, visible
from .bearer import current_principal, requires
from .blueprint import Blueprint
from .created import created
from .pagination import cursor_page
from .schemas.common import ListArgs, page_schema
from .schemas.merchants import (
    ApiKeyIn,
    ApiKeyOut,
    CreatedApiKeyOut,
    MerchantIn,
    MerchantOut,
    MerchantPatch,
    StoreIn,
    StoreOut,
)
from .unit_of_work import unit_of_work

blp = Blueprint("merchants", __name__, url_prefix="/api/v1", description="Merchants, stores, API keys")


@blp.route("/merchants")
class Merchants(MethodView):
    @requires(PLATFORM)
    @blp.arguments(ListArgs(), location="query")
    @blp.response(200, page_schema(MerchantOut, "MerchantPage"))
    def get(self, args):
        return cursor_page(select(Merchant), Merchant.id, after=args["after"], limit=args["limit"])

    @requires(PLATFORM)
    @unit_of_work
    @blp.arguments(MerchantIn())
    @blp.response(201, MerchantOut)
    def post(self, data):
        merchant = merchants.create_merchant(db.session, **data,
                                             max_window=current_app.config["MAX_REVERSAL_WINDOW"])
        return created(merchant, f"merchants/{merchant.id}")


@blp.route("/merchants/<merchant_id>")
class MerchantById(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.response(200, MerchantOut)
    def get(self, merchant_id):
        return merchants.get_merchant(db.session, current_principal(), merchant_id)

    @requires(PLATFORM, MANAGER)
    @unit_of_work
    @blp.arguments(MerchantPatch())
    @blp.response(200, MerchantOut)
    def patch(self, changes, merchant_id):
        merchant = merchants.get_merchant(db.session, current_principal(), merchant_id)
        return merchants.update_merchant(db.session, merchant, changes,
                                         max_window=current_app.config["MAX_REVERSAL_WINDOW"])


@blp.route("/merchants/<merchant_id>/stores")
class Stores(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.arguments(ListArgs(), location="query")
    @blp.response(200, page_schema(StoreOut, "StorePage"))
    def get(self, args, merchant_id):
        merchant = merchants.get_merchant(db.session, current_principal(), merchant_id)
        query = select(Store).where(Store.merchant_id == merchant.id)
        return cursor_page(query, Store.id, after=args["after"], limit=args["limit"])

    @requires(PLATFORM, MANAGER)
    @unit_of_work
    @blp.arguments(StoreIn())
    @blp.response(201, StoreOut)
    def post(self, data, merchant_id):
        merchant = merchants.get_merchant(db.session, current_principal(), merchant_id)
        store = merchants.create_store(db.session, merchant, **data)
        return created(store, f"stores/{store.id}")


@blp.route("/stores/<store_id>")
class StoreById(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.response(200, StoreOut)
    def get(self, store_id):
        """One store of the caller's merchant."""
        return visible(db.session, current_principal(), Store, store_id, name="store")


@blp.route("/merchants/<merchant_id>/api-keys")
class ApiKeys(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.arguments(ListArgs(), location="query")
    @blp.response(200, page_schema(ApiKeyOut, "ApiKeyPage"))
    def get(self, args, merchant_id):
        merchant = merchants.get_merchant(db.session, current_principal(), merchant_id)
        query = select(ApiKey).where(ApiKey.merchant_id == merchant.id)
        return cursor_page(query, ApiKey.id, after=args["after"], limit=args["limit"])

    @requires(PLATFORM, MANAGER)
    @unit_of_work
    @blp.arguments(ApiKeyIn())
    @blp.response(201, CreatedApiKeyOut)
    def post(self, data, merchant_id):
        merchant = merchants.get_merchant(db.session, current_principal(), merchant_id)
        new = create_key(db.session, merchant_id=merchant.id, **data)
        return created(_with_secret(new.key, new.secret), f"api-keys/{new.key.id}")


@blp.route("/api-keys/<key_id>")
class ApiKeyById(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.response(200, ApiKeyOut)
    def get(self, key_id):
        """A key's label, role, store and revocation; never its secret."""
        return visible(db.session, current_principal(), ApiKey, key_id, name="API key")

    @requires(PLATFORM, MANAGER)
    @unit_of_work
    @blp.response(200, ApiKeyOut)
    def delete(self, key_id):
        return revoke_key(db.session, current_principal(), key_id)


def _with_secret(key: ApiKey, secret: str) -> dict:
    return {column: getattr(key, column) for column in
            ("id", "role", "merchant_id", "store_id", "label", "prefix", "created_at", "revoked_at")} \
        | {"key": secret}
