"""The data model; one module per concept, re-exported here."""

from .campaign import Campaign, CustomerPurchase, campaign_stores
from .coupon import Coupon, Order, Revocation
from .event import Event
from .idempotency import IdempotencyRecord
from .integration import Delivery, DeliveryAttempt, Integration, Subscription
from .job import Job
from .lookup_block import LookupBlock
from .merchant import ApiKey, Merchant, Store
from .person import AdminSession, AdminUser, AuditEntry
from .redemption import OfflineScan, Redemption, RedemptionAttempt

__all__ = [
    "AdminSession", "AdminUser", "ApiKey", "AuditEntry", "Campaign", "Coupon", "CustomerPurchase", "Delivery", "DeliveryAttempt",
    "Event", "IdempotencyRecord", "Integration", "Job", "LookupBlock", "Subscription", "Merchant", "OfflineScan", "Order", "Redemption", "RedemptionAttempt",
    "Revocation", "Store", "campaign_stores",
]
