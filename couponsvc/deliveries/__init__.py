"""Draining the deliveries the outbox (`couponsvc/outbox/`) writes: claims, attempts with
backoff, an integration's health, the relay sweep."""
