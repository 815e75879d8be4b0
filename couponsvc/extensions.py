"""Flask extensions, created unbound and bound in `create_app()`."""

from __future__ import annotations

import http

from flask_migrate import Migrate
from flask_smorest import Api
from flask_smorest.spec import prepare_response
from flask_sqlalchemy import SQLAlchemy

from .models.base import Base


class ProblemJsonApi(Api):
    """flask-smorest's Api, documenting error responses as `application/problem+json`."""

    PROBLEM_CONTENT_TYPE = "application/problem+json"

    def _register_responses(self):
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            content_type = self.DEFAULT_RESPONSE_CONTENT_TYPE
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                content_type = self.PROBLEM_CONTENT_TYPE
            prepare_response(response, self.spec, content_type)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "An error, as RFC 9457 problem details", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, self.PROBLEM_CONTENT_TYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
api = ProblemJsonApi()

