"""Checked values every layer hands on: non-empty ids, row limits, durations in seconds."""

from __future__ import annotations

from typing import Any

from steward.errors import ConfigError

__all__ = ["limit_of", "seconds", "seconds_or_none", "str_id"]


def str_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"{name} must be a non-empty string, got {value!r}: convert it with str() before "
            "putting it in config['configurable']."
        )
    return value


def limit_of(limit: Any) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise ConfigError(f"limit must be a non-negative int or None, got {limit!r}.")
    return limit


def seconds(name: str, value: Any) -> float:
    """A positive number of seconds, as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}.")
    return float(value)


def seconds_or_none(name: str, value: Any) -> float | None:
    """A positive number of seconds, or None for none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{name} must be a positive number of seconds or None, got "
                          f"{value!r}.")
    return float(value)
