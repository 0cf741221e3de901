"""Database URLs: which backend, where, and how to print them without their password."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from steward.errors import ConfigError

_SCHEMES = "sqlite:///path/to/file.db, sqlite://:memory: or postgresql://user:pass@host/db"


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    backend: Literal["sqlite", "postgres"]
    target: str  # a file path, ":memory:", or a libpq connection URL
    masked: str  # the URL as it may be printed


def mask(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)
    if parts.password is None:
        masked = url
    else:
        user = parts.username or ""
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        masked = urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
    return re.sub(r"(password=)[^&\s]*", r"\1***", masked)


def parse_url(url: object) -> DatabaseURL:
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"database URL must be a non-empty string like {_SCHEMES}; got {url!r}.")
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
