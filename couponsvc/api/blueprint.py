"""The API's blueprints: flask-smorest's, reading each JSON body once.

`request_body.check_body` parses every body before the view runs (415, 400 for nesting
too deep) and Flask caches what it parsed; webargs' `FlaskParser` would parse the raw
bytes again for the view's schema. `BodyOnceParser` takes the cached body; a body Flask
could not parse is handed to webargs as before, which answers 400 `malformed_json`.
"""

from __future__ import annotations

import flask_smorest
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request


class BodyOnceParser(FlaskParser):
    def _raw_load_json(self, req):
        if not is_json_request(req):
            return core.missing
        parsed = req.get_json(silent=True)
        if parsed is None:  # unreadable, empty or `null`: as webargs reads it
            return core.parse_json(req.get_data(cache=True))
        return parsed


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = BodyOnceParser()
