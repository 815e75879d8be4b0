"""Campaigns (group-buy deals) and their lifecycle."""

from __future__ import annotations

from flask.views import MethodView

from .. import campaigns
from ..campaigns.listing import campaigns_query
from ..deal_pages.poster_answer import poster_answer
from ..extensions import db
from ..models import Campaign
from ..principal import MANAGER, PLATFORM
from ..qr_keys import keyring
from .bearer import current_principal, requires
from .blueprint import Blueprint
from .created import created
from .pagination import cursor_page
from .schemas.campaigns import (
    CampaignIn,
    CampaignListArgs,
    CampaignOut,
    CampaignPatch,
    CampaignStatsOut,
    CancelIn,
    PosterArgs,
)
from .schemas.common import page_schema
from .unit_of_work import unit_of_work

blp = Blueprint("campaigns", __name__, url_prefix="/api/v1", description="Group-buy deals")


def _campaign(campaign_id: str, *, for_update: bool = False) -> Campaign:
    return campaigns.get_campaign(db.session, current_principal(), campaign_id, for_update=for_update)


@blp.route("/campaigns")
class Campaigns(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.arguments(CampaignListArgs(), location="query")
    @blp.response(200, page_schema(CampaignOut, "CampaignPage"))
    def get(self, args):
        query = campaigns_query(current_principal().merchant_scope, merchant_id=args.get("merchant_id"),
                                status=args.get("status"), city=args.get("city"))
        return cursor_page(query, Campaign.id, after=args["after"], limit=args["limit"])

    @requires(PLATFORM, MANAGER)
    @unit_of_work
    @blp.arguments(CampaignIn())
    @blp.response(201, CampaignOut)
    def post(self, data):
        campaign = campaigns.create_campaign(db.session, current_principal(), data)
        return created(campaign, f"campaigns/{campaign.id}")


@blp.route("/campaigns/<campaign_id>")
class CampaignById(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.response(200, CampaignOut)
    def get(self, campaign_id):
        return _campaign(campaign_id)

    @requires(PLATFORM, MANAGER)
    @unit_of_work
    @blp.arguments(CampaignPatch())
    @blp.response(200, CampaignOut)
    def patch(self, changes, campaign_id):
        return campaigns.update_campaign(db.session, _campaign(campaign_id, for_update=True), changes)


@blp.route("/campaigns/<campaign_id>/publish")
class Publish(MethodView):
    @requires(PLATFORM, MANAGER)
    @unit_of_work
    @blp.response(200, CampaignOut)
    def post(self, campaign_id):
        return campaigns.publish(db.session, _campaign(campaign_id), keyring().current_kid)


@blp.route("/campaigns/<campaign_id>/pause")
class Pause(MethodView):
    @requires(PLATFORM, MANAGER)
    @unit_of_work
    @blp.response(200, CampaignOut)
    def post(self, campaign_id):
        return campaigns.pause(db.session, _campaign(campaign_id))


@blp.route("/campaigns/<campaign_id>/resume")
class Resume(MethodView):
    @requires(PLATFORM, MANAGER)
    @unit_of_work
    @blp.response(200, CampaignOut)
    def post(self, campaign_id):
        return campaigns.resume(db.session, _campaign(campaign_id))


@blp.route("/campaigns/<campaign_id>/cancel")
class Cancel(MethodView):
    @requires(PLATFORM, MANAGER)
    @unit_of_work
    @blp.arguments(CancelIn(), required=False)
    @blp.response(200, CampaignOut)
    def post(self, data, campaign_id):
        return campaigns.cancel(db.session, _campaign(campaign_id), (data or {}).get("reason", ""))


@blp.route("/campaigns/<campaign_id>/poster.png")
class Poster(MethodView):
    @blp.arguments(PosterArgs(), location="query")
    @blp.response(200, content_type="image/png")
    @blp.alt_response(304, description="Not Modified: `If-None-Match` names the poster's ETag")
    @blp.doc(security=[{}, {"bearerAuth": []}])
    def get(self, args, campaign_id):
        return poster_answer(campaign_id, token=args["token"], language=args["lang"])


@blp.route("/campaigns/<campaign_id>/stats")
class Stats(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.response(200, CampaignStatsOut)
    def get(self, campaign_id):
        return campaigns.campaign_stats(db.session, _campaign(campaign_id))
