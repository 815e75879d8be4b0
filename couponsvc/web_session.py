"""Cookie sessions for the admin pages only: API requests never open one.

Flask opens the session of every request; for a bearer-authenticated API that is
pure cost (a cookie parse and a signature check on each scan at the till).
"""

from __future__ import annotations

from flask.sessions import SecureCookieSessionInterface


class AdminOnlySessionInterface(SecureCookieSessionInterface):
    def open_session(self, app, request):
        if request.path.startswith("/api/"):
            return self.null_session_class()
        return super().open_session(app, request)
