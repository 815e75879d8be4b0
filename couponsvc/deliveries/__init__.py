"""Delivering events to integrations: fan-out, attempts with backoff, the relay sweep."""
