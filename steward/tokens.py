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

from pydantic import ValidationError

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


def _public_key(public: str) -> Any:
    """``STEWARD_JWT_PUBLIC_KEY`` as a key: a deployment's fault (ConfigError naming it) when
    it names no readable file or holds no RSA public key, not every caller's token's."""
    if not public.lstrip().startswith("-----"):
        try:
            public = Path(public).read_text()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"STEWARD_JWT_PUBLIC_KEY is neither PEM text nor a readable file "
                              f"({exc}): set it to the issuer's RSA public key, or its "
                              "file's path.") from exc
    from jwt.algorithms import RSAAlgorithm
    from jwt.exceptions import InvalidKeyError

    try:
        return RSAAlgorithm(RSAAlgorithm.SHA256).prepare_key(public)
    except (InvalidKeyError, ValueError) as exc:
        raise ConfigError(f"STEWARD_JWT_PUBLIC_KEY holds no RSA public key ({exc}): set it to "
                          "the issuer's PEM (-----BEGIN PUBLIC KEY-----...), or its file's "
                          "path.") from exc


def _jwks_key(url: str, token: str) -> Any:
    """The key of ``token``'s ``kid`` in the set at ``url``. A set that cannot be fetched, is
    no JSON Web Key Set or holds no signing key is the deployment's fault (ConfigError naming
    STEWARD_JWT_JWKS_URL); a kid the set lacks, or a malformed header, is the token's."""
    import jwt

    try:
        _jwks(url).get_signing_keys()
    except jwt.PyJWKClientConnectionError as exc:
        raise ConfigError(f"cannot fetch the key set at STEWARD_JWT_JWKS_URL={url}: "
                          f"{exc}. Check the URL and that this host reaches it.") from exc
    except (jwt.PyJWTError, ValueError) as exc:  # not JSON, not a key set, no signing key
        raise ConfigError(f"STEWARD_JWT_JWKS_URL={url} serves no usable JSON Web Key Set "
                          f"({exc}): set it to the issuer's jwks.json (Cognito: https://"
                          "cognito-idp.<region>.amazonaws.com/<pool id>/.well-known/"
                          "jwks.json).") from exc
    try:
        return _jwks(url).get_signing_key_from_jwt(token).key
    except jwt.PyJWTError as exc:  # no key for its kid, a malformed header
        raise TokenInvalid(f"invalid token: {exc}") from exc


def _key(token: str) -> tuple[Any, list[str]]:
    """The key to verify ``token`` with, and the algorithms it may use."""
    secret = os.environ.get("STEWARD_JWT_SECRET")
    if secret:
        return secret, ["HS256"]
    public = os.environ.get("STEWARD_JWT_PUBLIC_KEY", "")
    if public:
        return _public_key(public), ["RS256"]
    url = os.environ.get("STEWARD_JWT_JWKS_URL")
    if url:
        return _jwks_key(url, token), ["RS256", "ES256"]
    raise ConfigError("no key to verify tokens with: set STEWARD_JWT_SECRET (HS256), "
                      "STEWARD_JWT_PUBLIC_KEY (RS256) or STEWARD_JWT_JWKS_URL.")


def _principal(claims: dict[str, Any]) -> Principal:
    """The principal the claims name, validated as every principal is (``Principal.parse``);
    TokenInvalid naming the claim at fault and the setting that names it."""
    tenant = os.environ.get("STEWARD_JWT_TENANT_CLAIM") or "tenant"
    roles = os.environ.get("STEWARD_JWT_ROLES_CLAIM") or "roles"
    said = {"id": "claim 'sub' is not a non-empty string",
            "tenant": f"claim {tenant!r} (STEWARD_JWT_TENANT_CLAIM names it) is not a "
                      "non-empty string: the token names no tenant",
            "roles": f"claim {roles!r} (STEWARD_JWT_ROLES_CLAIM names it) is not a list of "
                     "strings"}
    found = claims.get(roles)
    try:
        return Principal.parse({"id": str(claims["sub"]), "tenant": claims.get(tenant),
                                "roles": [] if found is None else found})
    except ConfigError as exc:
        cause = exc.__cause__
        fields = {str(e["loc"][0]) for e in cause.errors() if e["loc"]} \
            if isinstance(cause, ValidationError) else set(said)
        wrong = "; ".join(said[f] for f in said if f in fields) or str(exc)
        raise TokenInvalid(f"the token names no valid principal: {wrong}. Ask the issuer for "
                           "a token that carries it, or set the variable to the claim the "
                           "issuer uses.") from exc


def verify_token(token: str) -> Principal:
    """The principal a bearer token names; TokenInvalid if it fails verification or names no
    valid principal, ConfigError if this host has no key to verify it with (or a bad one)."""
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
    return _principal(claims)


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
