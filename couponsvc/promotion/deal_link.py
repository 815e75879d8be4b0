"""The deal link: where a shared deal sends people (the poster's QR, the deal page's button).

A template, `COUPONSVC_DEAL_URL_TEMPLATE` for the deployment or a merchant's own
`deal_url_template` (which wins), names the storefront's page of a deal, e.g.
`https://shop.example.cn/deals/{campaign_id}`; its placeholders are `{campaign_id}` and
`{merchant_id}`. With no template the link is the service's public deal page,
`<public URL>/d/<campaign_id>`. No Flask here: callers pass the templates and the base URL.
"""

from __future__ import annotations

import string
from urllib.parse import quote, urlsplit

from ..domain_error import N_

PLACEHOLDERS = ("campaign_id", "merchant_id")
MAX_LENGTH = 500
SAMPLE = {"campaign_id": "cmp_01JD8Y3K2Q9V7M4T6X0A5B8C1D", "merchant_id": "mer_01JD7Q8ZK3"}


def template_problems(template: str) -> list[str]:
    """Why `template` cannot make deal links, in English (empty: it can). The messages are
    marked for the catalogue, so a form or an API answer can say them in Chinese."""
    if len(template) > MAX_LENGTH:
        return [N_("Must be at most 500 characters.")]
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in template):
        return [N_("Must not contain spaces or control characters.")]
    try:
        fields_ok = all(field in PLACEHOLDERS and not spec and conversion is None
                        for _, field, spec, conversion in string.Formatter().parse(template)
                        if field is not None)
    except ValueError:  # an unmatched { or }
        fields_ok = False
    if not fields_ok:
        return [N_("Only the placeholders {campaign_id} and {merchant_id} may be used "
                   "(write a literal brace as {{ or }}).")]
    try:
        parts = urlsplit(_fill(template, SAMPLE))
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. a malformed port or IPv6 address
        ok = False
    if not ok:
        return [N_("Must be an http:// or https:// URL with a host name.")]
    return []


def deal_link(*, campaign_id: str, merchant_id: str, merchant_template: str | None,
              deployment_template: str | None, public_base: str) -> str:
    """The deal's link: the merchant's template, else the deployment's, else the deal page."""
    template = storefront_template(merchant_template, deployment_template)
    if template is None:
        return deal_page_url(public_base, campaign_id)
    return _fill(template, {"campaign_id": campaign_id, "merchant_id": merchant_id})


def storefront_template(merchant_template: str | None, deployment_template: str | None) -> str | None:
    """The template in force: a storefront is configured when this is not None."""
    return merchant_template or deployment_template or None


def deal_page_url(public_base: str, campaign_id: str) -> str:
    return f"{public_base}/d/{quote(campaign_id, safe='')}"


def _fill(template: str, values: dict[str, str]) -> str:
    return template.format(**{name: quote(value, safe="") for name, value in values.items()})
