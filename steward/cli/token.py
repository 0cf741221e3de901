"""``steward token``: a bearer token for a LangGraph server run with Steward's auth."""

from __future__ import annotations

import os
import sys
import time
import warnings
from typing import Annotated, Any

import typer

from steward.cli.options import AsOption, acting_as
from steward.errors import ConfigError

__all__ = ["token"]


def token(who: AsOption, secret: Annotated[str | None, typer.Option(
        "--secret", envvar="STEWARD_JWT_SECRET", show_default=False,
        help="The server's HS256 secret (its STEWARD_JWT_SECRET).")] = None,
        expires_in: Annotated[int, typer.Option("--expires-in", help="Seconds the token is "
                                                "valid.")] = 3600) -> None:
    """Print a bearer token (an HS256 JWT) for the principal, for a LangGraph server run with
    Steward's auth and the same STEWARD_JWT_SECRET (e.g. `langgraph dev`): send it in the
    header "Authorization: Bearer <token>". Claim names, issuer and audience follow the server's
    STEWARD_JWT_* settings."""
    principal = acting_as(who)
    if not secret:
        raise ConfigError("no secret to sign with: pass --secret TEXT or set STEWARD_JWT_SECRET "
                          "to the secret the server verifies tokens with.")
    if expires_in <= 0:
        raise ConfigError(f"--expires-in {expires_in}: give a positive number of seconds, "
                          "e.g. 3600.")
    try:
        import jwt
    except ImportError as exc:
        raise ConfigError("steward token needs PyJWT: pip install 'langgraph-steward[server]'."
                          ) from exc
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": principal.id, "iat": now, "exp": now + expires_in,
        os.environ.get("STEWARD_JWT_TENANT_CLAIM", "tenant"): principal.tenant,
        os.environ.get("STEWARD_JWT_ROLES_CLAIM", "roles"): sorted(principal.roles)}
    for claim, variable in (("iss", "STEWARD_JWT_ISSUER"), ("aud", "STEWARD_JWT_AUDIENCE")):
        if os.environ.get(variable):
            claims[claim] = os.environ[variable]
    with warnings.catch_warnings(record=True) as caught:  # PyJWT's, e.g. a short secret
        warnings.simplefilter("always")
        encoded = jwt.encode(claims, secret, algorithm="HS256")
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    print(encoded)
