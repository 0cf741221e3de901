"""Database URLs (steward.storage.url): parsing, and masking the password wherever a URL is
printed, as properties over generated URLs. No database."""

from __future__ import annotations

import string
from urllib.parse import quote

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import steward
from steward import ConfigError
from steward.storage.url import _SCHEMES as _URL_HELP
from steward.storage.url import DatabaseURL, mask, parse_url

PROPS = settings(max_examples=200, deadline=None)

users = st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=12)
hosts = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,10}){0,2}", fullmatch=True)
ports = st.none() | st.integers(1, 65535)
dbnames = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=12)
# Passwords as written into a URL by hand: anything that does not end the userinfo part.
raw_passwords = st.text(
    st.characters(codec="ascii", categories=("L", "N", "P", "S"), exclude_characters="@/?#"),
    min_size=4, max_size=24)


def _pg_url(user: str, password: str, host: str, port: int | None, db: str) -> tuple[str, str]:
    """(url, the masked url it should print as)."""
    netloc_tail = f"{host}:{port}" if port else host
    return (f"postgresql://{user}:{password}@{netloc_tail}/{db}",
            f"postgresql://{user}:***@{netloc_tail}/{db}")


@PROPS
@given(users, st.text(min_size=4, max_size=24), hosts, ports, dbnames)
def test_mask_hides_a_percent_encoded_password(user: str, password: str, host: str,
                                               port: int | None, db: str) -> None:
    encoded = quote(password, safe="")
    url, expected = _pg_url(user, encoded, host, port, db)
    assume(password not in expected and encoded not in expected)
    masked = mask(url)
    assert masked == expected  # user, host, port and database kept; only the password goes
    assert password not in masked and encoded not in masked
    parsed = parse_url(url)
    assert parsed == DatabaseURL("postgres", url, expected)


@PROPS
@given(users, raw_passwords, hosts, ports, dbnames, st.sampled_from(["", "?password="]))
def test_mask_hides_a_raw_password(user: str, password: str, host: str, port: int | None,
                                   db: str, query: str) -> None:
    url, expected = _pg_url(user, password, host, port, db)
    if query:  # libpq also takes the password as a query parameter
        # A bracket makes urlsplit raise, and that fallback leaves the query unmasked: see
        # test_a_query_password_is_masked_when_urlsplit_fails.
        assume("[" not in password and "]" not in password)
        url, expected = url + query + quote(password, safe=""), expected + query + "***"
    assume(password not in expected)
    masked = mask(url)
    assert masked == expected
    assert password not in masked
    assert parse_url(url).masked == expected


# Only schemes urlsplit recognises: with any other the URL goes unmasked, see
# test_a_mistyped_url_does_not_print_its_password.
schemes = st.sampled_from(["sqlite", "SQLite", "postgresql", "postgres", "postgresql+psycopg",
                           "POSTGRESQL", "mysql", "http"]) \
    | st.from_regex(r"[A-Za-z][A-Za-z0-9+.-]{0,7}", fullmatch=True)
paths = st.sampled_from(["", "/", "/:memory:", "/x.db"]) | st.text(max_size=12).map("/{}".format)


@st.composite
def url_like(draw: st.DrawFn) -> tuple[str, str]:
    """(a URL-shaped string, the password in it); the password stays out of the other parts."""
    password = draw(raw_passwords)
    user = draw(users | st.just(""))
    # No ':' in what ends up in the netloc: a bad port is test_a_bad_port_is_a_config_error.
    host = draw(hosts | st.just("") | st.text(max_size=6).filter(lambda h: ":" not in h))
    port = draw(st.just("") | st.integers(1, 65535).map(lambda p: f":{p}"))
    url = f"{draw(schemes)}://{user}:{password}@{host}{port}{draw(paths)}"
    assume(url.count(password) == 1)
    return url, password


def _parse_or_config_error(url: object) -> DatabaseURL | ConfigError:
    try:
        return parse_url(url)
    except ConfigError as exc:
        return exc


@PROPS
@given(st.text(max_size=40) | st.binary(max_size=20) | st.integers() | st.none()
       | st.lists(st.text(max_size=3), max_size=2))
def test_parse_url_of_garbage_returns_or_raises_config_error(url: object) -> None:
    result = _parse_or_config_error(url)  # any other exception fails the test
    if isinstance(result, DatabaseURL):
        assert result.backend in ("sqlite", "postgres")
        assert isinstance(url, str) and "://" in url


@PROPS
@given(url_like())
def test_parse_url_errors_never_show_the_password(case: tuple[str, str]) -> None:
    url, password = case
    assume(password not in _URL_HELP)  # the message's own example shows 'user:pass@host/db'
    result = _parse_or_config_error(url)
    if isinstance(result, ConfigError):
        assert password not in str(result)
        assert "sqlite://" in str(result) or "postgresql://" in str(result)  # says what to use
    else:
        assert password not in result.masked


@pytest.mark.parametrize("url", ["postgresql://u:s3cret-pw@host:abc/db",
                                 "postgresql://u:s3cret-pw@host:99999/db"])
def test_a_bad_port_is_a_config_error(url: str) -> None:
    # libpq is the judge of what a PostgreSQL URL may hold (multiple hosts, odd passwords):
    # a bad port is refused when connecting, as a ConfigError naming the masked URL.
    with pytest.raises(ConfigError, match="cannot connect to PostgreSQL") as info:
        steward.open(url)
    assert "s3cret-pw" not in str(info.value) and "u:***@" in str(info.value)


@pytest.mark.parametrize("url", ["postgresql:/alice:s3cret-pw@db.example/app",
                                 "postgresql:alice:s3cret-pw@db.example/app",
                                 "postgresql//alice:s3cret-pw@db.example/app",
                                 "postgres_db://alice:s3cret-pw@db.example/app",
                                 "postgresql ://alice:s3cret-pw@db.example/app",
                                 "://alice:s3cret-pw@db.example/app"])
def test_a_mistyped_url_does_not_print_its_password(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_url(url)
    assert "s3cret-pw" not in str(info.value)


@pytest.mark.parametrize("url", ["postgresql://[::1/app?password=s3cret-pw",
                                 "postgresql://alice@db]/app?password=s3cret-pw",
                                 "postgresql://alice:pa[ss@db/app?password=s3cret-pw"])
def test_a_query_password_is_masked_when_urlsplit_fails(url: str) -> None:
    assert "s3cret-pw" not in mask(url)


def test_a_non_string_url_does_not_print_its_password() -> None:
    with pytest.raises(ConfigError) as info:
        parse_url(b"postgresql://alice:s3cret-pw@db.example/app")
    assert "s3cret-pw" not in str(info.value)
