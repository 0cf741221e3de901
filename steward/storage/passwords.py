"""PostgreSQL passwords asked for afresh at each new connection: ``steward.open(url,
password=...)``.

Some servers take passwords that expire: Amazon RDS and Aurora with IAM database
authentication take a token signed with the process's AWS credentials, valid for 15 minutes
(``steward.aws.rds_iam_password`` builds the callable). A pool keeps its connections far
longer, and opens new ones whenever it grows or replaces one, so no password fixed in the URL
would do: every place that opens a connection (the pools, the lease session, the connection
check, the job queue) calls the callable for that connection. The server checks a password
only when a connection opens, so connections already open are not affected when it changes.

A callable that raises, or returns anything but a non-empty str, is a ConfigError that says
which and what to do; no message ever holds a password.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from steward.errors import ConfigError, StewardError

__all__ = ["Password", "apool_kwargs", "ask", "connect_args", "password_option", "pool_kwargs"]

Password = Callable[[], str]


def password_option(value: object) -> Password | None:
    """The ``password=`` option, checked: a callable, or a str (kept out of the URL)."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            raise ConfigError("password= is an empty string: pass the password, a callable "
                              "that returns it, or leave password= out.")
        secret = value

        def fixed() -> str:  # a closure: unlike a partial, its repr does not show the value
            return secret

        return fixed
    if callable(value):
        return value
    raise ConfigError(f"password= takes a callable that returns the password of each new "
                      f"PostgreSQL connection (steward.aws.rds_iam_password(...), say) or a "
                      f"str, got {type(value).__name__}.")


def _name(password: Password) -> str:
    """What to call the callable in a message: its name, never its repr (which may hold
    arguments such as a secret's id or the secret itself)."""
    name = getattr(password, "__qualname__", None) or type(password).__qualname__
    return f"password= callable {name!r}"


def ask(password: Password) -> str:
    """The password for one new connection; ConfigError if the callable fails."""
    try:
        value = password()
    except StewardError:
        raise  # already says what was wrong and what to do (steward.aws's do)
    except Exception as exc:
        raise ConfigError(f"the {_name(password)} failed: {type(exc).__name__}: {exc}. Fix what "
                          "it needs (for RDS IAM authentication: AWS credentials and the "
                          "region) and retry.") from exc
    if not isinstance(value, str) or not value:
        got = "an empty string" if isinstance(value, str) else f"a {type(value).__name__}"
        raise ConfigError(f"the {_name(password)} returned {got}: it must return the password "
                          "of a new connection as a non-empty str (for RDS IAM authentication, "
                          "the token of steward.aws.rds_iam_password).")
    return value


def connect_args(password: Password | None, **options: Any) -> dict[str, Any]:
    """``psycopg.connect``'s keyword arguments: ``options`` and, with a callable, a fresh
    password (a keyword argument overrides a password in the URL)."""
    return options if password is None else {**options, "password": ask(password)}


def pool_kwargs(password: Password | None,
                **options: Any) -> dict[str, Any] | Callable[[], dict[str, Any]]:
    """A psycopg ``ConnectionPool``'s ``kwargs``: fixed, or, with a callable, evaluated again
    for each connection the pool opens (psycopg-pool >= 3.3)."""
    if password is None:
        return options
    return functools.partial(connect_args, password, **options)


def apool_kwargs(password: Password | None, **options: Any
                 ) -> dict[str, Any] | Callable[[], Awaitable[dict[str, Any]]]:
    """An ``AsyncConnectionPool``'s ``kwargs``: the callable runs in a thread, since it may
    block (boto3 reads files and may fetch credentials) and an event loop must not."""
    if password is None:
        return options

    async def kwargs() -> dict[str, Any]:
        return await asyncio.to_thread(connect_args, password, **options)

    return kwargs
