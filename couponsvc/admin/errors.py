"""Errors of the pages are pages: a refused form (CSRF) is a 400 page, a foreign or
unknown object a 404 page, never problem+json nor a 500. The JSON API keeps its own."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .. import i18n
from ..domain_error import DomainError
from ..errors import domain_problem
from . import admin


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_refused)


def _csrf_refused(error: CSRFError):
    if not i18n.is_page(request.path):
        from ..errors import problem

        return problem("bad_request", error.description)
    return error_page(400, _("This form has expired or was not sent from this site. "
                             "Go back, reload the page and send it again."))


TITLES = {
    400: lambda: _("The request was refused"),
    403: lambda: _("You may not do this"),
    404: lambda: _("Not found"),
    405: lambda: _("Not found"),
    409: lambda: _("This cannot be done now"),
    422: lambda: _("Check the values"),
    429: lambda: _("Too many attempts"),
}


def error_page(status: int, message: str | None = None):
    title = TITLES.get(status, lambda: _("Something went wrong"))()
    return render_template("admin/error.html", status=status, title=title,
                           message=message), status


@admin.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    if isinstance(error, CSRFError):
        return _csrf_refused(error)
    status = error.code or 500
    if status >= 500:
        raise error
    return error_page(status)


@admin.errorhandler(DomainError)
def _domain_error(error: DomainError):
    if request.accept_mimetypes.best == "application/problem+json":
        return domain_problem(error)
    status = error.status if error.status < 500 else 500
    if status >= 500:
        raise error
    message = None if error.code == "not_found" else i18n.translate(error.detail)
    return error_page(status, message)


@admin.route("/<path:rest>", methods=["GET", "POST"])
def _unknown(rest: str):
    return error_page(404)
