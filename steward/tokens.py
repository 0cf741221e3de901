"""Bearer tokens mapped to Steward principals, for every host that serves graphs over HTTP
(the LangGraph server's auth, the AgentCore entrypoint).

A token is a JWT whose claims name the principal: ``sub`` (its id), ``tenant`` and ``roles``
(claim names configurable). It is verified with PyJWT against the environment, read at each
call so that a deployment's settings apply without a restart of this module:

- ``STEWARD_JWT_SECRET`` (HS256), ``STEWARD_JWT_PUBLIC_KEY`` (RS256, PEM text or a path), or
  ``STEWARD_JWT_JWKS_URL`` (the issuer's JSON Web Key Set, e.g. an Amazon Cognito user pool's
  ``https://cognito-idp.<region>.amazonaws.com/<pool id>/.well-known/jwks.json``: the key is
  chosen by the token's ``kid``, RS256 or ES256, and the set is cached);
- ``STEWARD_JWT_ISSUER`` and ``STEWARD_JWT_AUDIENCE``, checked when set;
- ``STEWARD_JWT_TENANT_CLAIM`` / ``STEWARD_JWT_ROLES_CLAIM`` rename ``tenant`` / ``roles``
  (Cognito puts groups in ``cognito:groups``, custom attributes in ``custom:tenant``);
- ``STEWARD_DEV_TOKENS=1`` also accepts ``dev:TENANT/ID[:ROLE,...]`` tokens, for local
  development only (never set it in production).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steward.errors import ConfigError, TokenInvalid
from steward.identity import Principal, parse_principal

if TYPE_CHECKING:
    from jwt import PyJWKClient

__all__ = ["bearer_token", "verify_token"]

_INSTALL = "pip install 'langgraph-steward[server]' (or [aws]) for PyJWT"


@functools.lru_cache(maxsize=8)
def _jwks(url: str) -> PyJWKClient:
    from jwt import PyJWKClient

    return PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)


def _key(token: str) -> tuple[Any, list[str]]:
    """The key to verify ``token`` with, and the algorithms it may use."""
    secret = os.environ.get("STEWARD_JWT_SECRET")
    if secret:
        return secret, ["HS256"]
    public = os.environ.get("STEWARD_JWT_PUBLIC_KEY", "")
    if public and not public.lstrip().startswith("-----") and Path(public).is_file():
        public = Path(public).read_text()
    if public:
        return public, ["RS256"]
    url = os.environ.get("STEWARD_JWT_JWKS_URL")
    if url:
        import jwt

        try:
            return _jwks(url).get_signing_key_from_jwt(token).key, ["RS256", "ES256"]
        except jwt.PyJWKClientConnectionError as exc:
            raise ConfigError(f"cannot fetch the key set at STEWARD_JWT_JWKS_URL={url}: "
                              f"{exc}. Check the URL and that this host reaches it.") from exc
        except jwt.PyJWTError as exc:  # no key for its kid, a malformed header
            raise TokenInvalid(f"invalid token: {exc}") from exc
    raise ConfigError("no key to verify tokens with: set STEWARD_JWT_SECRET (HS256), "
                      "STEWARD_JWT_PUBLIC_KEY (RS256) or STEWARD_JWT_JWKS_URL.")


def verify_token(token: str) -> Principal:
    """The principal a bearer token names; TokenInvalid if it fails verification or names no
    tenant, ConfigError if this host has no key to verify it with."""
    if token.startswith("dev:") and os.environ.get("STEWARD_DEV_TOKENS") == "1":
        try:
            return parse_principal(token[4:], source="dev token")
        except ConfigError as exc:
            raise TokenInvalid(str(exc)) from exc
    try:
        import jwt
    except ImportError as exc:
        raise ConfigError(f"verifying tokens needs PyJWT: {_INSTALL}.") from exc
    key, algorithms = _key(token)
    try:
        claims = jwt.decode(token, key, algorithms=algorithms,
                            issuer=os.environ.get("STEWARD_JWT_ISSUER") or None,
                            audience=os.environ.get("STEWARD_JWT_AUDIENCE") or None,
                            options={"require": ["sub"]})
    except jwt.PyJWTError as exc:
        raise TokenInvalid(f"invalid token: {exc}") from exc
    tenant = claims.get(os.environ.get("STEWARD_JWT_TENANT_CLAIM", "tenant"))
    roles = claims.get(os.environ.get("STEWARD_JWT_ROLES_CLAIM", "roles")) or []
    if not tenant or not isinstance(tenant, str) or not isinstance(roles, list):
        raise TokenInvalid("the token names no tenant (or roles that are not a list)")
    try:
        return Principal(id=str(claims["sub"]), tenant=tenant,
                         roles=frozenset(str(r) for r in roles))
    except ConfigError as exc:
        raise TokenInvalid(f"the token names no valid principal: {exc}") from exc


def bearer_token(authorization: str | None, api_key: str | None = None) -> str:
    """The token a request carries, from ``Authorization: Bearer`` or ``X-Api-Key``;
    TokenInvalid when there is none, the Authorization header is not a bearer token, or the
    two differ."""
    authorization = (authorization or "").strip()
    api_key = (api_key or "").strip()
    bearer = None
    if authorization:
        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() != "bearer" or not rest.strip():
            raise TokenInvalid("the Authorization header must be 'Bearer <token>' (or send "
                               "the token as X-Api-Key)")
        bearer = rest.strip()
    if bearer and api_key and bearer != api_key:
        raise TokenInvalid("Authorization and X-Api-Key carry different tokens: send one "
                           "principal's token, in either header")
    token = bearer or api_key
    if not token:
        raise TokenInvalid("a token is needed: 'Authorization: Bearer <token>' or "
                           "'X-Api-Key: <token>'")
    return token
