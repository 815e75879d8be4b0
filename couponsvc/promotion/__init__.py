"""Promotion: what makes a deal spread. No Flask in this package.

- `deal_link`: where a shared deal sends people (a storefront template, else the deal page);
- `deal`: a deal as the public may see it (`Deal`, `public_deal`, `deal_of`);
- `fonts`: the CJK font found at run time; `poster`: the 1080×1920 share poster;
  `poster_cache`: drawn posters by key; `poster_token`: the capability in `poster_url`.

The pages (`/d/<id>`, `/embed/d/<id>`, `/oembed`) and the poster's HTTP answer are in
`couponsvc/deal_pages/`; docs/promotion.md tells the whole.
"""
