"""Checked values every layer hands to storage: non-empty ids and row limits."""

from __future__ import annotations

from typing import Any

from steward.errors import ConfigError

__all__ = ["limit_of", "str_id"]


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
