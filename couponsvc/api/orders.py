"""Selling deals (orders), bulk issuance and its jobs, the CSV export."""

from __future__ import annotations

from flask import Response, current_app, stream_with_context
from flask.views import MethodView
from sqlalchemy import select

from .. import bulk, campaigns
from ..campaigns.export import coupons_csv
from ..extensions import db
from ..models import Campaign, Coupon, Job, Order
from ..orders import orders_query, place_order
from ..principal import MANAGER, PLATFORM, visible
from ..public_url import base_url
from ..timeutil import utcnow
from .bearer import current_principal, requires
from .blueprint import Blueprint
from .created import created
from .links import issued_coupon
from .pagination import cursor_page
from .schemas.common import page_schema
from .schemas.coupons import BulkIn, CsvArgs, JobOut, OrderIn, OrderListArgs, OrderOut
from .unit_of_work import unit_of_work

blp = Blueprint("orders", __name__, url_prefix="/api/v1", description="Orders and coupon issuance")


@blp.route("/campaigns/<campaign_id>/orders")
class Orders(MethodView):
    @requires(PLATFORM)
    @unit_of_work
    @blp.arguments(OrderIn())
    @blp.response(201, OrderOut)
    def post(self, data, campaign_id):
        placed = place_order(db.session, campaign_id, **data)
        campaign = placed.campaign
        return created(_order_dict(placed.order, [
            issued_coupon(code, placed.coupon_status, campaign.id, campaign.valid_until, campaign.qr_kid)
            for code in placed.codes
        ]), f"orders/{placed.order.id}")


@blp.route("/orders")
class OrderList(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.arguments(OrderListArgs(), location="query")
    @blp.response(200, page_schema(OrderOut, "OrderPage"))
    def get(self, args):
        """Find orders by `campaign_id`, `customer_ref` (compared as `place_order` stores it:
        trimmed, case- and width-folded) and `payment_ref`, oldest first; a manager finds
        its merchant's."""
        principal = current_principal()
        query = orders_query(principal.merchant_scope,
                             campaign_id=args.get("campaign_id"), customer_ref=args.get("customer_ref"),
                             payment_ref=args.get("payment_ref"))
        page = cursor_page(query, Order.id, after=args["after"], limit=args["limit"])
        return {"data": _with_coupons(page["data"]), "next": page["next"]}


@blp.route("/orders/<order_id>")
class OrderById(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.response(200, OrderOut)
    def get(self, order_id):
        order = visible(db.session, current_principal(), Order, order_id, name="order")
        campaign = db.session.get(Campaign, order.campaign_id)
        rows = db.session.execute(select(Coupon).where(Coupon.order_id == order.id)
                                  .order_by(Coupon.created_at, Coupon.code)).scalars()
        now = utcnow()
        return _order_dict(order, [
            issued_coupon(c.code, c.public_status(now), c.campaign_id, c.valid_until, campaign.qr_kid)
            for c in rows
        ])


@blp.route("/campaigns/<campaign_id>/coupons/bulk")
class Bulk(MethodView):
    @requires(PLATFORM, MANAGER)
    @unit_of_work
    @blp.arguments(BulkIn())
    @blp.response(202, JobOut)
    def post(self, data, campaign_id):
        campaign = campaigns.get_campaign(db.session, current_principal(), campaign_id)
        job = _job_dict(bulk.request_bulk(db.session, campaign, data["count"],
                                          limit=current_app.config["BULK_MAX"]))
        return created(job, f"jobs/{job['id']}")


@blp.route("/jobs/<job_id>")
class JobById(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.response(200, JobOut)
    def get(self, job_id):
        return _job_dict(visible(db.session, current_principal(), Job, job_id, name="job"))


@blp.route("/campaigns/<campaign_id>/coupons.csv")
class CouponsCsv(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.arguments(CsvArgs(), location="query")
    @blp.response(200, content_type="text/csv")
    def get(self, args, campaign_id):
        campaign = campaigns.get_campaign(db.session, current_principal(), campaign_id)
        headers = {"Content-Disposition": f'attachment; filename="{campaign.id}-coupons.csv"'}
        return Response(stream_with_context(coupons_csv(db.session, campaign, args.get("status"))),
                        mimetype="text/csv", headers=headers)


def _with_coupons(orders: list[Order]) -> list[dict]:
    """These orders as `GET /orders/{id}` answers each, their coupons read in one query."""
    ids = [order.id for order in orders]
    kids = dict(db.session.execute(select(Campaign.id, Campaign.qr_kid)
                                   .where(Campaign.id.in_({order.campaign_id for order in orders}))).all())
    coupons: dict[str, list[dict]] = {order_id: [] for order_id in ids}
    now = utcnow()
    for c in db.session.execute(select(Coupon).where(Coupon.order_id.in_(ids))
                                .order_by(Coupon.created_at, Coupon.code)).scalars():
        coupons[c.order_id].append(issued_coupon(c.code, c.public_status(now), c.campaign_id, c.valid_until,
                                                 kids[c.campaign_id]))
    return [_order_dict(order, coupons[order.id]) for order in orders]


def _order_dict(order: Order, coupons: list[dict]) -> dict:
    return {"id": order.id, "campaign_id": order.campaign_id, "status": order.status,
            "customer_ref": order.customer_ref, "quantity": order.quantity,
            "payment_ref": order.payment_ref, "created_at": order.created_at, "coupons": coupons}


def _job_dict(job: Job) -> dict:
    data = {name: getattr(job, name) for name in
            ("id", "kind", "status", "campaign_id", "requested", "done", "error", "created_at",
             "started_at", "finished_at")}
    data["csv_url"] = f"{base_url()}/api/v1/campaigns/{job.campaign_id}/coupons.csv"
    return data
