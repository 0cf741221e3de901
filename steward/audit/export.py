"""Audit exports: a tenant's or a thread's chains as JSON Lines, written whole or not at all,
and checked offline (``steward audit verify --file``) without a database. ``write_whole`` is
that all-or-nothing write, shared with the files the command line writes (``report --html``)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO, TypeVar

from steward.audit.chain import Event, verify_chain
from steward.errors import AuditTampered, ConfigError
from steward.identity import Principal

__all__ = ["Chain", "verify_file", "write_export", "write_whole"]

T = TypeVar("T")

# One thread's chain as exported: its id, its events, and the head recorded on its row.
Chain = tuple[str, list[Event], "tuple[int, str | None] | None"]


def write_whole(path: str | Path, write: Callable[[TextIO], T], *, what: str,
                flag: str | None = None) -> T:
    """Write a file whole or not at all: ``write`` fills a temporary file beside ``path``,
    renamed over it at the end (readers never see half a file); on any failure the temporary
    file is removed. An OSError (a missing or unwritable directory, a full disk) becomes a
    ConfigError naming ``what``, and ``flag``, the command-line option, when there is one."""
    target = Path(path)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                    dir=target.parent)
    except OSError as exc:
        raise _unwritable(path, exc, what, flag) from exc
    try:
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                result = write(out)
            os.replace(temp, target)
        except OSError as exc:
            raise _unwritable(path, exc, what, flag) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return result


def _unwritable(path: str | Path, exc: OSError, what: str, flag: str | None) -> ConfigError:
    why = f"{exc.strerror or exc}. Check that its directory exists and is writable, and that " \
          "the disk has room"
    return ConfigError(f"cannot write {what} {str(path)!r}: {why}.",
                       cli=f"cannot write {what} {flag} {path}: {why}; or name another file "
                           f"with {flag}." if flag else None)


def write_export(path: str | Path, chains: list[Chain], who: Principal,
                 thread_id: str | None) -> int:
    """Write exported chains to ``path`` whole or not at all (``write_whole``); an export of
    no events is refused and writes nothing."""

    def lines(out: TextIO) -> int:
        count = 0
        for tid, events, head in chains:
            for event in events:
                out.write(json.dumps({"event": event.to_dict()}, sort_keys=True) + "\n")
                count += 1
            seq, last = head if head else (0, None)
            out.write(json.dumps({"head": {"thread_id": tid, "seq": seq, "hash": last}},
                                 sort_keys=True) + "\n")
        if count == 0:
            what, check = (f"thread {thread_id!r}", "the thread id") if thread_id else \
                (f"tenant {who.tenant!r}", "the principal's tenant")
            raise ConfigError(f"no audit events to export for {what}: check {check} and "
                              f"the database. Nothing was written to {str(path)!r}.")
        return count

    return write_whole(path, lines, what="the audit export", flag="--out")


def verify_file(path: str | Path) -> dict[str, int]:
    """Check a JSON Lines export offline: every chain, and that it reaches its recorded head.
    Returns events per thread; raises AuditTampered, or ConfigError for a file that is not an
    export."""
    chains: dict[str, list[Event]] = {}
    heads: dict[str, tuple[int, str | None]] = {}
    try:
        with Path(path).open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                item = json.loads(line)
                if "event" in item:
                    event = Event.from_dict(item["event"])
                    chains.setdefault(event.thread_id, []).append(event)
                elif "head" in item:
                    head = item["head"]
                    heads[str(head["thread_id"])] = (int(head["seq"]), head.get("hash"))
                else:
                    raise ValueError(f"line {number} is neither an event nor a head")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a Steward audit export: {exc}.") from exc
    counts = {}
    for tid in sorted(set(chains) | set(heads)):
        if tid not in heads:
            raise AuditTampered(f"the export has events of thread {tid!r} but not its head: "
                                "the file was cut or edited.")
        counts[tid] = verify_chain(tid, chains.get(tid, []), heads[tid])
    return counts


