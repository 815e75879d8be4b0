"""The public deal pages and the poster's HTTP answer (the domain is `couponsvc.promotion`).

- `GET /d/<campaign_id>`: the deal page, mobile first, with OpenGraph tags and the oEmbed
  discovery link; `GET /embed/d/<campaign_id>`: the compact card for an iframe (the one
  route that may be framed); both are pages (Chinese unless the `lang` cookie or
  `Accept-Language` asks for English) and answer an unknown, draft or cancelled deal with
  a 404 page (`pages.py`).
- `GET /d/<campaign_id>/progress.json` (what the page's script polls) and
  `GET /oembed?url=` (`data.py`): JSON, refusals as problem+json.
- `poster_answer.py`: `GET /api/v1/campaigns/<id>/poster.png`, called by the API's view.
"""

from __future__ import annotations

import os

from flask import Blueprint, Flask

from ..promotion.poster_cache import PosterCache

deal_pages = Blueprint("deal_pages", __name__)
deal_data = Blueprint("deal_data", __name__)

POSTERS = "couponsvc.posters"

from . import data, pages  # noqa: E402,F401  (their routes register on the blueprints)


def init_app(app: Flask) -> None:
    app.extensions[POSTERS] = PosterCache(os.path.join(app.instance_path, "posters"))
    app.register_blueprint(deal_pages)
    app.register_blueprint(deal_data)
