"""What events say about a campaign."""

from __future__ import annotations

from typing import Any

from ..models import Campaign


def campaign_event_data(campaign: Campaign) -> dict[str, Any]:
    return {
        "campaign": {
            "id": campaign.id,
            "merchant_id": campaign.merchant_id,
            "title": campaign.title,
            "city": campaign.city,
            "price": campaign.price,
            "list_price": campaign.list_price,
            "currency": campaign.currency,
            "status": campaign.status,
            "sold": campaign.sold,
            "min_group_size": campaign.min_group_size,
            "max_coupons": campaign.max_coupons,
            "tipped": campaign.tipped_at is not None,
            "sales_end": campaign.sales_end.isoformat(),
        }
    }
