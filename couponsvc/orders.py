"""Selling a deal: reserve inventory atomically, issue coupons, tip the deal.

`place_order` never oversells: the authoritative check is one conditional UPDATE
of the campaign row (`issued + quantity <= max_coupons`), run last so its row lock
is held only for the commit. The per-customer limit is a conditional upsert on
(campaign, normalised customer_ref). The order that crosses `min_group_size`
activates every coupon of the campaign and confirms every order, in its own
transaction.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .campaigns.data import campaign_event_data
from .domain_error import DomainError, say, say_n
from .ids import new_id
from .issuance import coupon_row, insert_coupons
from .metrics.catalog import ORDERS
from .metrics.outcomes import counted
from .models import Campaign, Coupon, CustomerPurchase, Order
from .outbox.emit import emit, emit_many
from .timeutil import utcnow


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    codes: list[str]
    coupon_status: str
    campaign: Campaign


def normalise_customer_ref(raw: str) -> str:
    """Trim, fold case and width, collapse inner whitespace: `" Alice@X.cn "` == `"alice@x.cn"`."""
    folded = unicodedata.normalize("NFKC", raw).casefold()
    return " ".join(folded.split())


@counted(ORDERS, "placed")
def place_order(session: Session, campaign_id: str, *, customer_ref: str, quantity: int,
                payment_ref: str = "") -> PlacedOrder:
    now = utcnow()
    customer = normalise_customer_ref(customer_ref)
    if not customer or len(customer) > 200:
        raise DomainError("validation_error", "customer_ref is empty or too long once normalised",
                          errors={"customer_ref": ["Must be 1 to 200 characters once normalised."]})
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise DomainError("not_found", "No such campaign")
    _precheck(session, campaign, customer, quantity, now)
    if campaign.per_customer_limit is not None:
        _count_purchase(session, campaign, customer, quantity)

    tipped_before = campaign.tipped_at is not None
    order = Order(id=new_id("ord"), campaign_id=campaign.id, merchant_id=campaign.merchant_id,
                  customer_ref=customer, quantity=quantity, payment_ref=payment_ref,
                  status="confirmed" if tipped_before else "pending", created_at=now)
    session.add(order)
    session.flush()
    status = "active" if tipped_before else "pending"
    codes = insert_coupons(session, coupon_row(campaign, status=status, order_id=order.id, now=now),
                           quantity)

    sold = _reserve(session, campaign, quantity, now)
    session.refresh(campaign)
    if not tipped_before and sold - quantity < campaign.min_group_size <= sold:
        tip(session, campaign, now)
        status = "active"
    elif not tipped_before and campaign.tipped_at is not None:
        # Another order tipped the deal while this one was being written: its
        # activation could not see these coupons, so activate them here.
        _activate(session, Coupon.order_id == order.id)
        order.status, status = "confirmed", "active"
        _emit_confirmed(session, campaign, [order])
    elif tipped_before:
        _emit_confirmed(session, campaign, [order])
    session.refresh(order)
    emit(session, "coupon.issued", merchant_id=campaign.merchant_id, data={
        "campaign_id": campaign.id, "order_id": order.id, "count": len(codes),
        "coupons": [{"code": code, "status": status} for code in codes],
    } | campaign_event_data(campaign))
    return PlacedOrder(order=order, codes=codes, coupon_status=status, campaign=campaign)


def tip(session: Session, campaign: Campaign, now: datetime) -> None:
    """The deal is on: activate every pending coupon, confirm every pending order."""
    _activate(session, Coupon.campaign_id == campaign.id)
    confirmed = session.execute(
        update(Order).where(Order.campaign_id == campaign.id, Order.status == "pending")
        .values(status="confirmed").returning(Order.id, Order.customer_ref, Order.quantity,
                                              Order.payment_ref)
        .execution_options(synchronize_session="fetch")
    ).all()
    emit(session, "campaign.tipped", merchant_id=campaign.merchant_id,
         data=campaign_event_data(campaign) | {"tipped_at": now.isoformat()})
    _emit_confirmed(session, campaign, confirmed)


def _activate(session: Session, which) -> None:
    session.execute(
        update(Coupon).where(which, Coupon.status == "pending")
        .values(status="active", seq=Coupon.seq + 1)
        .execution_options(synchronize_session=False)
    )


def _emit_confirmed(session: Session, campaign: Campaign, orders) -> None:
    emit_many(session, [
        {"type": "order.confirmed", "merchant_id": campaign.merchant_id, "data": {
            "order": {"id": o.id, "campaign_id": campaign.id, "customer_ref": o.customer_ref,
                      "quantity": o.quantity, "payment_ref": o.payment_ref, "status": "confirmed"},
        }}
        for o in orders
    ])


def _precheck(session: Session, campaign: Campaign, customer: str, quantity: int,
              now: datetime) -> None:
    """Cheap refusals before any write; `_reserve` re-checks under the row lock."""
    if not _on_sale(campaign, now):
        raise _not_on_sale(campaign, now)
    if campaign.per_customer_limit is not None and quantity > campaign.per_customer_limit:
        raise _limit_reached(campaign, _bought(session, campaign, customer))
    if campaign.max_coupons is not None and campaign.issued + quantity > campaign.max_coupons:
        raise short_of_stock(campaign, quantity)


def _reserve(session: Session, campaign: Campaign, quantity: int, now: datetime) -> int:
    row = session.execute(
        update(Campaign)
        .where(
            Campaign.id == campaign.id, Campaign.status == "active",
            Campaign.sales_start <= now, Campaign.sales_end > now,
            (Campaign.max_coupons.is_(None)) | (Campaign.issued + quantity <= Campaign.max_coupons),
        )
        .values(
            sold=Campaign.sold + quantity, issued=Campaign.issued + quantity, updated_at=now,
            tipped_at=case(
                ((Campaign.tipped_at.is_(None)) & (Campaign.sold + quantity >= Campaign.min_group_size), now),
                else_=Campaign.tipped_at,
            ),
        )
        .returning(Campaign.sold)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        session.refresh(campaign)
        if not _on_sale(campaign, now):
            raise _not_on_sale(campaign, now)
        raise short_of_stock(campaign, quantity)
    return row.sold


def _count_purchase(session: Session, campaign: Campaign, customer: str, quantity: int) -> None:
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    table = CustomerPurchase.__table__
    statement = module.insert(table).values(campaign_id=campaign.id, customer_ref=customer,
                                            quantity=quantity)
    statement = statement.on_conflict_do_update(
        index_elements=["campaign_id", "customer_ref"],
        set_={"quantity": table.c.quantity + statement.excluded.quantity},
        where=table.c.quantity + statement.excluded.quantity <= campaign.per_customer_limit,
    ).returning(table.c.quantity)
    if session.execute(statement).first() is None:
        raise _limit_reached(campaign, _bought(session, campaign, customer))


def _bought(session: Session, campaign: Campaign, customer: str) -> int:
    return session.execute(select(CustomerPurchase.quantity).where(
        CustomerPurchase.campaign_id == campaign.id, CustomerPurchase.customer_ref == customer,
    )).scalar_one_or_none() or 0


def _limit_reached(campaign: Campaign, bought: int) -> DomainError:
    """Always with `bought` and `limit`, so a storefront can say how many are still allowed."""
    return DomainError("customer_limit_reached",
                       say_n("this customer has bought %(bought)d of at most %(num)d coupon",
                             "this customer has bought %(bought)d of at most %(num)d coupons",
                             campaign.per_customer_limit, bought=bought),
                       bought=bought, limit=campaign.per_customer_limit)


def _on_sale(campaign: Campaign, now: datetime) -> bool:
    return campaign.status == "active" and campaign.sales_start <= now < campaign.sales_end


def _not_on_sale(campaign: Campaign, now: datetime) -> DomainError:
    if campaign.status != "active":
        detail = say("the deal is %(status)s", status=campaign.status)
    elif now < campaign.sales_start:
        detail = say("the deal is not on sale yet")
    else:
        detail = say("the deal is past its sales end")
    return DomainError("campaign_not_on_sale", detail)


def short_of_stock(campaign: Campaign, asked: int) -> DomainError:
    """`sold_out` when nothing is left; `insufficient_stock` with `remaining` when some
    is, but fewer than `asked` (a storefront can offer what is left)."""
    remaining = max(0, (campaign.max_coupons or 0) - campaign.issued)
    if remaining == 0:
        return DomainError("sold_out", say("no coupons are left"), remaining=0)
    return DomainError("insufficient_stock",
                       say_n("%(num)d coupon left, %(asked)d asked",
                             "%(num)d coupons left, %(asked)d asked", remaining, asked=asked),
                       remaining=remaining, asked=asked)


def orders_query(merchant_id: str | None, *, campaign_id: str | None = None,
                 customer_ref: str | None = None, payment_ref: str | None = None) -> Select:
    """The orders `GET /orders` finds: of `merchant_id` (None: every merchant's), with
    these exact values; `customer_ref` normalised as `place_order` stored it."""
    query = select(Order)
    if merchant_id is not None:
        query = query.where(Order.merchant_id == merchant_id)
    if campaign_id is not None:
        query = query.where(Order.campaign_id == campaign_id)
    if customer_ref is not None:
        query = query.where(Order.customer_ref == normalise_customer_ref(customer_ref))
    if payment_ref is not None:
        query = query.where(Order.payment_ref == payment_ref)
    return query
