"""Words of the integration pages about adapters: what each built-in adapter is for, the
labels of config fields, event types said for people, and the built-in adapters' field
descriptions marked for the catalogue (the adapters say them in English in their schemas;
a page says them in its language, and an adapter installed later keeps its own words)."""

from __future__ import annotations

from flask_babel import gettext

from ..domain_error import N_

ADAPTERS = {
    "webhook": N_("Signed HTTP POSTs (Standard Webhooks) to your own system or ERP"),
    "odoo": N_("Records each redemption in an Odoo database (JSON-RPC)"),
    "wecom": N_("Announces deals in a WeCom (企业微信) group through its robot"),
    "dingtalk": N_("Announces deals in a DingTalk (钉钉) group through its robot"),
    "mastodon": N_("Posts deals to a Mastodon account"),
    "discourse": N_("Opens a topic for each deal on a Discourse forum and replies in it"),
    "weibo": N_("Shares deals on a Weibo account, with their posters"),
    "feishu": N_("Announces deals in a Feishu (飞书) or Lark group through its custom bot"),
}

KINDS = {"erp": N_("ERP"), "social": N_("social")}

FIELDS = {
    "url": N_("URL"), "secret": N_("Signing secret"), "headers": N_("Extra headers"),
    "locale": N_("Message language"), "link_template": N_("Deal link template"),
    "nearly_tipped_threshold": N_("“Nearly tipped” threshold"), "webhook_url": N_("Robot webhook URL"),
    "access_token": N_("Access token"), "key": N_("Robot key"), "instance_url": N_("Instance URL"),
    "visibility": N_("Visibility"), "language": N_("Post language"), "max_characters": N_("Most characters"),
    "database": N_("Database"), "login": N_("Login"), "api_key": N_("API key"), "uid": N_("User id"),
    "model": N_("Model"), "field_mapping": N_("Field mapping"), "dedupe_field": N_("Deduplication field"),
    "poster": N_("Poster"), "max_per_minute": N_("Most deliveries a minute"), "base_url": N_("Forum URL"),
    "api_username": N_("API user name"), "category_id": N_("Category id"), "api_base": N_("API address"),
    "safe_domain": N_("Safe domain"), "rip": N_("Reported IP address"),
}

EVENTS = {
    "campaign.published": N_("a deal is published"),
    "campaign.tipped": N_("a deal tips"),
    "campaign.ended": N_("a deal ends"),
    "campaign.failed": N_("a deal fails to tip"),
    "campaign.cancelled": N_("a deal is cancelled"),
    "order.confirmed": N_("an order is confirmed"),
    "order.refund_pending": N_("an order is to be refunded"),
    "coupon.issued": N_("coupons are issued"),
    "coupon.redeemed": N_("a coupon is redeemed"),
    "coupon.redemption_reversed": N_("a redemption is reversed"),
    "coupon.voided": N_("a coupon is voided"),
    "ping": N_("a test ping"),
    "integration.disabled": N_("an integration is disabled"),
}

DESCRIPTIONS = (
    N_("message language: zh (default) or en"),
    N_("deal link, e.g. https://shop.example.cn/deals/{campaign_id} ({campaign_id} and {merchant_id} "
       "are filled in)"),
    N_("announce an order that leaves at most this many missing"),
    N_("the robot's webhook URL (holds its token)"),
    N_("the robot's access_token, instead of webhook_url"),
    N_("the robot's SEC… signing secret (加签)"),
    N_("e.g. https://mastodon.social"),
    N_("a token with write:statuses"),
    N_("ISO 639 code; default: the locale"),
    N_("the instance, e.g. https://acme.odoo.com"),
    N_("the login's user id; asked when absent"),
    N_("Odoo field → source path"),
    N_("field holding the event id; null creates without looking"),
    N_("the endpoint that receives the POSTs"),
    N_("whsec_… signing secret; generated when absent and shown once"),
    N_("extra request headers (they often carry a token: write-only)"),
    N_("the robot's webhook URL (holds its key)"),
    N_("the robot's key, instead of webhook_url"),
    N_("the deal's poster: image (sent after the text), news (one card with the poster) or none"),
    N_("show the deal's poster under the text"),
    N_("attach the deal's poster (needs write:media)"),
    N_("the custom bot's webhook URL (holds its token)"),
    N_("the bot's signing secret (签名校验), when it is set"),
    N_("add a button to the deal's poster"),
    N_("the OAuth2 access token of the account that posts"),
    N_("Weibo's API, https://api.weibo.com unless told"),
    N_("the app's bound safe domain (安全域名); the deal link must be on it"),
    N_("the real IP Weibo asks a caller to report, if any"),
    N_("attach the deal's poster as the picture"),
    N_("the forum, e.g. https://bbs.example.cn"),
    N_("an API key of the forum"),
    N_("the user the key posts as"),
    N_("the category the deals' topics go to"),
    N_("upload the deal's poster into its topic"),
    N_("at most this many deliveries a minute (the receiver's own limit); none when empty"),
)

# What the adapters' schemas say of a refused field of the promotion adapters (the
# admin's form says them in its language: couponsvc/admin/form_errors.py).
REFUSALS = (
    N_("The link's host must be the safe domain or one of its subdomains: Weibo refuses links to "
       "any other."),
    N_("A host name such as shop.example.cn."), N_("Not a valid IP address."),
    N_("Must be greater than or equal to 1."),
    N_("Must be greater than or equal to 1 and less than or equal to 100000."),
    N_("Length must be between 3 and 253."), N_("Length must be between 1 and 60."),
    N_("Length must be between 1 and 500."), N_("Must be one of: image, news, none."),
)


def adapter_blurb(name: str) -> str:
    return gettext(ADAPTERS[name]) if name in ADAPTERS else ""


def kind_name(kind: str | None) -> str:
    return gettext(KINDS[kind]) if kind in KINDS else (kind or "")


def field_label(name: str) -> str:
    return gettext(FIELDS[name]) if name in FIELDS else name.replace("_", " ").capitalize()


def event_name(event_type: str) -> str:
    return gettext(EVENTS[event_type]) if event_type in EVENTS else event_type


def described(text: str) -> str:
    """A field's description in the page's language, when the catalogue has it."""
    return gettext(text) if text else ""
