"""Queue names, declared once. `couponsvc worker` listens to them in this order."""

DELIVERIES = "deliveries"
DEFAULT = "default"
BULK = "bulk"

ALL = (DELIVERIES, DEFAULT, BULK)
