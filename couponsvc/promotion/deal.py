"""A deal as it is shown to the public: on the poster, the deal page, the embed card, oEmbed.

`Deal` holds only what may be shown to anyone: the campaign id is the one internal id in
it (no merchant, store or key id). `public_deal` finds a campaign that is or was on sale
(a draft, a cancelled deal or an unknown id is `not_found`, alike); `deal_of` makes the
`Deal` of any campaign a caller already may see (the poster of a draft, for its manager).
No Flask: callers pass the link settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session, lazyload

from ..domain_error import DomainError, say
from ..models import Campaign, Merchant, Store
from ..models.campaign import campaign_stores
from .deal_link import deal_link, storefront_template

PUBLIC_STATUSES = ("active", "paused", "ended", "failed")
"""On sale, paused, or over (tipped or not): a link shared earlier still shows what it was."""


@dataclass(frozen=True)
class LinkSettings:
    """Where links point: the public base URL and `COUPONSVC_DEAL_URL_TEMPLATE`."""

    public_base: str
    deployment_template: str | None = None


@dataclass(frozen=True)
class DealStore:
    name: str
    city: str
    address: str


@dataclass(frozen=True)
class Deal:
    campaign_id: str
    merchant_name: str
    title: str
    description: str
    price: int
    list_price: int | None
    currency: str
    status: str
    sold: int
    min_group_size: int
    tipped: bool
    sales_start: datetime
    sales_end: datetime
    timezone: str
    stores: tuple[DealStore, ...]
    link: str  # the deal link: the storefront's page, else the deal page
    storefront: str | None  # the storefront's page of the deal, when a template is set

    @property
    def remaining(self) -> int:
        """Buyers still needed to tip (0 once tipped)."""
        return 0 if self.tipped else max(0, self.min_group_size - self.sold)

    @property
    def progress(self) -> float:
        """How far to the tipping point, 0 to 1."""
        if self.tipped or self.min_group_size <= 0:
            return 1.0
        return min(1.0, self.sold / self.min_group_size)

    @property
    def over(self) -> bool:
        return self.status in ("ended", "failed", "cancelled")


def public_deal(session: Session, campaign_id: str, links: LinkSettings) -> Deal:
    """Two statements: the campaign with its merchant, then its stores."""
    row = session.execute(
        select(Campaign, Merchant).join(Merchant, Merchant.id == Campaign.merchant_id)
        .where(Campaign.id == campaign_id, Campaign.status.in_(PUBLIC_STATUSES))
        .options(lazyload(Campaign.stores))).first()
    if row is None:
        raise DomainError("not_found", say("No such deal"))
    return _deal(row.Campaign, row.Merchant, _stores(session, row.Campaign), links)


def deal_of(session: Session, campaign: Campaign, links: LinkSettings) -> Deal:
    return _deal(campaign, session.get(Merchant, campaign.merchant_id), _stores(session, campaign),
                 links)


def _stores(session: Session, campaign: Campaign) -> list[Store]:
    """The stores that honour the deal: those it names, or every store of its merchant."""
    named = select(campaign_stores.c.store_id).where(campaign_stores.c.campaign_id == campaign.id)
    return list(session.scalars(
        select(Store).where(Store.merchant_id == campaign.merchant_id,
                            or_(Store.id.in_(named), ~exists(named)))
        .order_by(Store.id)))


def _deal(campaign: Campaign, merchant: Merchant, stores: list[Store], links: LinkSettings) -> Deal:
    template = storefront_template(merchant.deal_url_template, links.deployment_template)
    link = deal_link(campaign_id=campaign.id, merchant_id=merchant.id,
                     merchant_template=merchant.deal_url_template,
                     deployment_template=links.deployment_template, public_base=links.public_base)
    return Deal(
        campaign_id=campaign.id, merchant_name=merchant.name, title=campaign.title,
        description=campaign.description or "", price=campaign.price, list_price=campaign.list_price,
        currency=campaign.currency, status=campaign.status, sold=campaign.sold,
        min_group_size=campaign.min_group_size, tipped=campaign.tipped,
        sales_start=campaign.sales_start, sales_end=campaign.sales_end, timezone=merchant.timezone,
        stores=tuple(DealStore(s.name, s.city or "", s.address or "") for s in stores),
        link=link, storefront=link if template is not None else None,
    )


