"""What a LangGraph config and a task's writes tell the saver: the target checkpoint, the
thread's time to live and subjects, and what an interrupt makes the thread wait on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig

from steward.errors import ConfigError
from steward.storage.values import str_id

__all__ = ["interrupts", "subjects_of", "target", "ttl_of"]


def subjects_of(value: Any) -> tuple[str, ...]:
    """The subjects of a thread (the people whose personal data it holds), validated."""
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise ConfigError(f"subjects must be a list of ids (e.g. e-mail addresses), got "
                          f"{value!r}.")
    return tuple(sorted({str_id(s, "a subject") for s in value}))


def target(config: RunnableConfig | None, *, need_id: bool = False) -> tuple[str, str, str | None]:
    """(thread_id, checkpoint_ns, checkpoint_id) of a config, validated."""
    configurable = (config or {}).get("configurable")
    if not isinstance(configurable, Mapping) or "thread_id" not in configurable:
        raise ConfigError(
            "config has no thread_id: pass {'configurable': {'thread_id': '...'}} or build it "
            "with rt.config(thread_id, principal)."
        )
    tid = str_id(configurable["thread_id"], "thread_id")
    ns = configurable.get("checkpoint_ns") or ""
    if not isinstance(ns, str):
        raise ConfigError(f"checkpoint_ns must be a string, got {ns!r}.")
    cid = configurable.get("checkpoint_id")
    if cid is not None:
        cid = str_id(cid, "checkpoint_id")
    elif need_id:
        raise ConfigError("config has no checkpoint_id: writes belong to a stored checkpoint.")
    return tid, ns, cid


# Where a payload belongs; encryption binds each ciphertext to it (see _crypto.Cipher).


def ttl_of(config: RunnableConfig | None) -> float | None:
    options = ((config or {}).get("configurable") or {}).get("steward") or {}
    ttl = options.get("ttl") if isinstance(options, Mapping) else None
    return float(ttl) if ttl is not None else None


def interrupts(value: Any, task_id: str) -> list[dict[str, Any]]:
    """A JSON summary of what a thread waits on, from a task's ``__interrupt__`` write."""
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        payload = getattr(item, "value", item)
        kind = payload.get("type") if isinstance(payload, Mapping) else None
        entry: dict[str, Any] = {"id": getattr(item, "id", None),
                                 "type": kind if isinstance(kind, str) else None,
                                 "task": task_id}
        roles = payload.get("required_roles") if isinstance(payload, Mapping) \
            and kind == "approval_request" else None
        if isinstance(roles, list) and all(isinstance(r, str) for r in roles):
            entry["roles"] = sorted(roles)  # who may vote: the approver's reach
            request = payload.get("id") if isinstance(payload, Mapping) else None
            if isinstance(request, str):
                entry["request"] = request  # its timer marks it (checkpointers.wakes.timed_out_op)
        out.append(entry)
    return out
