"""Where a stored payload belongs. Encryption binds each ciphertext to its place, so a sealed
value copied to another row (another thread, checkpoint or write) fails to open there."""

from __future__ import annotations

__all__ = ["at_blob", "at_checkpoint", "at_effect", "at_write"]


def at_checkpoint(tid: str, ns: str, cid: str) -> tuple[str, ...]:
    return ("checkpoint", tid, ns, cid)


def at_blob(tid: str, ns: str, channel: str, version: str) -> tuple[str, ...]:
    return ("blob", tid, ns, channel, version)


def at_write(tid: str, ns: str, cid: str, task_id: str, idx: int) -> tuple[str, ...]:
    return ("write", tid, ns, cid, task_id, str(idx))


def at_effect(tid: str, task_ns: str, seq: int) -> tuple[str, ...]:
    return ("effect", tid, task_ns, str(seq))
