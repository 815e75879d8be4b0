"""Campaigns (group-buy deals): lifecycle, close at sales end, statistics."""

from .close import close_campaign, due_campaign_ids
from .lifecycle import (
                        cancel,
                        create_campaign,
                        figures_can_change,
                        get_campaign,
                        pause,
                        publish,
                        resume,
                        update_campaign,
)
from .stats import campaign_stats

__all__ = ["cancel", "close_campaign", "campaign_stats", "create_campaign", "due_campaign_ids",
           "figures_can_change", "get_campaign", "pause", "publish", "resume", "update_campaign"]
