"""People who sign in to the admin pages: operators and merchant managers, their sessions,
and the audit log of what they did.

A person is not an API key: they sign in with an e-mail and a password (argon2), and each
sign-in opens a server-side session that expires, can be ended from the admin, and is
found by the SHA-256 of the random token kept in the browser's cookie.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..ids import new_id
from ..timeutil import UTCDateTime, utcnow
from .base import Base


class AdminUser(Base):
    """An operator (role `operator`, every merchant) or a manager of one merchant."""

    __tablename__ = "admin_users"
    __table_args__ = (Index("ix_admin_users_merchant", "merchant_id"),)

    ROLES = ("operator", "manager")

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("adm"))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(16), default="operator")
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.id"), default=None)
    name: Mapped[str] = mapped_column(String(200), default="")
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_by: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AdminSession(Base):
    """One sign-in. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "admin_sessions"
    __table_args__ = (Index("ix_admin_sessions_user", "user_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ses"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("admin_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class AuditEntry(Base):
    """Who did what, when, from which address: every admin action, kept."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_merchant", "merchant_id", "at"),
                      Index("ix_audit_log_at", "at"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("aud"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[str | None] = mapped_column(String(40), default=None)
    user_email: Mapped[str] = mapped_column(String(320), default="")
    merchant_id: Mapped[str | None] = mapped_column(String(40), default=None)
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32), default="")
    target_id: Mapped[str] = mapped_column(String(64), default="")
    address: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
