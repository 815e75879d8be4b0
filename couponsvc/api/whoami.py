"""The caller's own key: what a scanner app needs to know about itself."""

from __future__ import annotations

from flask.views import MethodView

from ..extensions import db
from ..principal import ROLES
from ..timeutil import utcnow
from ..whoami import whoami
from .bearer import current_principal, requires
from .blueprint import Blueprint
from .schemas.whoami import WhoamiOut

blp = Blueprint("whoami", __name__, url_prefix="/api/v1", description="The caller's own key")


@blp.route("/whoami")
class Whoami(MethodView):
    @requires(*ROLES)
    @blp.response(200, WhoamiOut)
    def get(self):
        return whoami(db.session, current_principal(), utcnow())
