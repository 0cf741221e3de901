"""Bearer tokens to principals (``steward.tokens``): HS256, RS256 from a PEM, and a JSON Web
Key Set served over HTTP (as Amazon Cognito publishes one), each refusing what it must."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st

from steward.errors import ConfigError, TokenInvalid
from steward.identity import Principal
from steward.tokens import _jwks, bearer_token, verify_token

SECRET = "a-secret-for-tests-32-bytes-or-more"
ENV = ("STEWARD_JWT_SECRET", "STEWARD_JWT_PUBLIC_KEY", "STEWARD_JWT_JWKS_URL",
       "STEWARD_JWT_ISSUER", "STEWARD_JWT_AUDIENCE", "STEWARD_JWT_TENANT_CLAIM",
       "STEWARD_JWT_ROLES_CLAIM", "STEWARD_DEV_TOKENS")


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    _jwks.cache_clear()


def _claims(**extra: Any) -> dict[str, Any]:
    # A day: the parameters below are built at collection, long before some tests run.
    return {"sub": "bob", "tenant": "acme", "roles": ["manager"], "exp": time.time() + 86400,
            **extra}


def test_an_hs256_token_names_its_principal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_JWT_SECRET", SECRET)
    assert verify_token(jwt.encode(_claims(), SECRET)) == Principal(
        id="bob", tenant="acme", roles=frozenset({"manager"}))


@pytest.mark.parametrize(("claims", "secret", "why"), [
    (_claims(), "another-secret-of-32-bytes-or-more!", "Signature verification failed"),
    (_claims(exp=time.time() - 10), SECRET, "expired"),
    ({"tenant": "acme", "roles": []}, SECRET, "sub"),
    (_claims(tenant=""), SECRET, "no tenant"),
    (_claims(roles="manager"), SECRET, "not a list"),
    (_claims(sub=""), SECRET, "no valid principal"),
    (_claims(roles=[1, None]), SECRET, "claim 'roles' \\(STEWARD_JWT_ROLES_CLAIM names it\\) "
                                       "is not a list of strings"),
    (_claims(roles={"manager": True}), SECRET, "STEWARD_JWT_ROLES_CLAIM"),
    (_claims(tenant=["acme"]), SECRET, "claim 'tenant' \\(STEWARD_JWT_TENANT_CLAIM names it\\)"),
])
def test_a_bad_token_is_refused_saying_why(monkeypatch: pytest.MonkeyPatch,
                                           claims: dict[str, Any], secret: str,
                                           why: str) -> None:
    monkeypatch.setenv("STEWARD_JWT_SECRET", SECRET)
    with pytest.raises(TokenInvalid, match=why):
        verify_token(jwt.encode(claims, secret))


def test_issuer_audience_and_claim_names_come_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_JWT_SECRET", SECRET)
    monkeypatch.setenv("STEWARD_JWT_ISSUER", "https://idp.example")
    monkeypatch.setenv("STEWARD_JWT_AUDIENCE", "steward")
    monkeypatch.setenv("STEWARD_JWT_TENANT_CLAIM", "custom:tenant")
    monkeypatch.setenv("STEWARD_JWT_ROLES_CLAIM", "cognito:groups")
    good = {"sub": "bob", "custom:tenant": "acme", "cognito:groups": ["manager"],
            "iss": "https://idp.example", "aud": "steward", "exp": time.time() + 60}
    assert verify_token(jwt.encode(good, SECRET)).roles == {"manager"}
    with pytest.raises(TokenInvalid, match=r"(?i)issuer"):
        verify_token(jwt.encode({**good, "iss": "https://elsewhere"}, SECRET))
    with pytest.raises(TokenInvalid, match=r"(?i)audience"):
        verify_token(jwt.encode({**good, "aud": "other"}, SECRET))


def test_no_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="STEWARD_JWT_SECRET"):
        verify_token(jwt.encode(_claims(), SECRET))
    monkeypatch.setenv("STEWARD_DEV_TOKENS", "1")  # dev tokens need no key
    assert verify_token("dev:acme/bob:manager").id == "bob"
    with pytest.raises(TokenInvalid, match="dev token"):
        verify_token("dev:no-tenant")


def _rsa() -> tuple[Any, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, pem.decode()


def test_a_renamed_claim_is_named_when_it_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_JWT_SECRET", SECRET)
    monkeypatch.setenv("STEWARD_JWT_ROLES_CLAIM", "cognito:groups")
    with pytest.raises(TokenInvalid, match="claim 'cognito:groups' \\(STEWARD_JWT_ROLES_CLAIM"):
        verify_token(jwt.encode({**_claims(), "cognito:groups": "manager"}, SECRET))
    assert verify_token(jwt.encode(_claims(), SECRET)).roles == frozenset()  # none: no roles


def test_an_rs256_token_against_a_public_key_file(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Any) -> None:
    key, pem = _rsa()
    (tmp_path / "key.pem").write_text(pem)
    monkeypatch.setenv("STEWARD_JWT_PUBLIC_KEY", str(tmp_path / "key.pem"))
    assert verify_token(jwt.encode(_claims(), key, algorithm="RS256")).id == "bob"
    with pytest.raises(TokenInvalid):
        verify_token(jwt.encode(_claims(), SECRET))  # HS256 with a public key: refused


@pytest.fixture
def jwks() -> Iterator[tuple[str, dict[str, Any], list[int]]]:
    """A JSON Web Key Set on loopback, as an identity provider (Cognito) serves it."""
    keys: dict[str, Any] = {}
    fetched: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetched.append(1)
            body = json.dumps({"keys": [
                {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())),
                 "kid": kid, "alg": "RS256", "use": "sig"} for kid, k in keys.items()]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json", keys, fetched
    finally:
        server.shutdown()
        server.server_close()


def test_a_key_set_url_picks_the_key_by_kid(monkeypatch: pytest.MonkeyPatch,
                                           jwks: tuple[str, dict[str, Any], list[int]]) -> None:
    url, keys, fetched = jwks
    keys["k1"], _ = _rsa()
    keys["k2"], _ = _rsa()
    monkeypatch.setenv("STEWARD_JWT_JWKS_URL", url)
    for kid in ("k1", "k2", "k1"):
        token = jwt.encode(_claims(), keys[kid], algorithm="RS256", headers={"kid": kid})
        assert verify_token(token).tenant == "acme"
    assert len(fetched) == 1  # the set is cached
    stranger, _ = _rsa()
    with pytest.raises(TokenInvalid):
        verify_token(jwt.encode(_claims(), stranger, algorithm="RS256", headers={"kid": "k9"}))
    with pytest.raises(TokenInvalid):  # a known kid, the wrong key
        verify_token(jwt.encode(_claims(), stranger, algorithm="RS256", headers={"kid": "k1"}))


@pytest.mark.parametrize("value", ["/nonexistent/steward/key.pem", "not a key at all",
                                   "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"])
def test_a_public_key_setting_that_is_no_key_is_a_config_error(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any, value: str) -> None:
    """The deployment's fault, said as such (HTTP 500), not every caller's token's (401)."""
    key, _ = _rsa()
    monkeypatch.setenv("STEWARD_JWT_PUBLIC_KEY", value)
    with pytest.raises(ConfigError, match="STEWARD_JWT_PUBLIC_KEY"):
        verify_token(jwt.encode(_claims(), key, algorithm="RS256"))
    (tmp_path / "garbage.pem").write_text("garbage")
    monkeypatch.setenv("STEWARD_JWT_PUBLIC_KEY", str(tmp_path / "garbage.pem"))
    with pytest.raises(ConfigError, match="STEWARD_JWT_PUBLIC_KEY holds no RSA public key"):
        verify_token(jwt.encode(_claims(), key, algorithm="RS256"))


@pytest.mark.parametrize("body", [b"<html>not json</html>", b'{"keys": []}', b"[1, 2]",
                                  b'{"nokeys": true}'])
def test_a_key_set_url_serving_no_key_set_is_a_config_error(
        monkeypatch: pytest.MonkeyPatch, body: bytes) -> None:
    """A set that is not JSON, or holds no key, is the deployment's fault: ConfigError naming
    STEWARD_JWT_JWKS_URL (served on loopback: tests never reach the internet)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("STEWARD_JWT_JWKS_URL", f"http://127.0.0.1:{server.server_port}/k")
        key, _ = _rsa()
        with pytest.raises(ConfigError, match=r"STEWARD_JWT_JWKS_URL=http://127\.0\.0\.1:.* "
                                              r"serves no usable JSON Web Key Set"):
            verify_token(jwt.encode(_claims(), key, algorithm="RS256", headers={"kid": "k1"}))
    finally:
        server.shutdown()
        server.server_close()


def test_an_unreachable_key_set_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_JWT_JWKS_URL", "http://127.0.0.1:9/jwks.json")
    key, _ = _rsa()
    with pytest.raises(ConfigError, match="STEWARD_JWT_JWKS_URL"):
        verify_token(jwt.encode(_claims(), key, algorithm="RS256", headers={"kid": "k1"}))


def test_bearer_token_reads_either_header() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token(None, "abc") == "abc"
    assert bearer_token("bearer  abc ", "abc") == "abc"
    for authorization, api_key, why in [(None, None, "a token is needed"),
                                        ("Basic abc", None, "Bearer"),
                                        ("Bearer", None, "Bearer"),
                                        ("Bearer abc", "xyz", "different tokens")]:
        with pytest.raises(TokenInvalid, match=why):
            bearer_token(authorization, api_key)


@given(st.text(max_size=40), st.text(max_size=40))
def test_bearer_token_returns_a_token_or_refuses(authorization: str, api_key: str) -> None:
    try:
        token = bearer_token(authorization, api_key)
    except TokenInvalid:
        return
    assert token and token == token.strip()
    assert token in (authorization + api_key)
