"""Database URLs: which backend, where, and how to print them without their password."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from steward.errors import ConfigError

_SCHEMES = "sqlite:///path/to/file.db, sqlite://:memory: or postgresql://user:pass@host/db"


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    backend: Literal["sqlite", "postgres"]
    target: str  # a file path, ":memory:", or a libpq connection URL
    masked: str  # the URL as it may be printed


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-_ ]*:?/*")
_QUERY_PASSWORD = re.compile(r"(?P<key>password=)[^&\s]*", re.IGNORECASE)


def mask(url: str) -> str:
    """The URL with any password (in the user info or a ``password=`` option) as ``***``.

    Works on mistyped URLs too (``postgresql:/u:pw@h``): the user info is whatever lies between
    the scheme's separators and the last ``@`` before the query, and everything after its first
    colon is hidden.
    """
    head, sep, query = url.partition("?")
    at = head.rfind("@")
    if at != -1:
        scheme = _SCHEME.match(head)
        start = scheme.end() if scheme else 0
        userinfo = head[start:at]
        if ":" in userinfo:
            head = f"{head[:start]}{userinfo.split(':', 1)[0]}:***{head[at:]}"
    return _QUERY_PASSWORD.sub(lambda m: f"{m['key']}***", head + sep + query)


def parse_url(url: object) -> DatabaseURL:
    if not isinstance(url, str) or not url.strip():
        got = "an empty string" if isinstance(url, str) else f"a {type(url).__name__} value"
        raise ConfigError(f"database URL must be a non-empty string like {_SCHEMES}; got {got}.")
    url = url.strip()
    masked = mask(url)
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(f"database URL {masked!r} has no scheme: use {_SCHEMES}.")
    scheme = scheme.lower()
    if scheme == "sqlite":
        if rest in (":memory:", "/:memory:"):
            return DatabaseURL("sqlite", ":memory:", masked)
        if not rest.startswith("/") or rest == "/":
            raise ConfigError(
                f"SQLite URL {masked!r} names no file: use sqlite:///relative/path.db, "
                "sqlite:////absolute/path.db or sqlite://:memory:."
            )
        return DatabaseURL("sqlite", rest[1:], masked)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return DatabaseURL("postgres", "postgresql://" + rest, masked)
    raise ConfigError(f"unknown database URL scheme {scheme!r} in {masked!r}: use {_SCHEMES}.")
