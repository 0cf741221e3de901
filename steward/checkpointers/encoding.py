"""What a put stores: the checkpoint's row (its small values inline, sealed when encrypted,
its metadata flattened for filters) and each changed channel value's row, whole or as a delta
of a list this process wrote or read last; the twin of ``decoding``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    Checkpoint,
    CheckpointMetadata,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from steward.checkpointers.deltas import Known, ListCache, plan
from steward.checkpointers.rows import WriteCtx
from steward.identity import Principal
from steward.storage.codec import Codec, dump_json
from steward.storage.places import at_blob, at_checkpoint

__all__ = ["Encoder", "inline_value"]

# Scalars up to this many characters ride inside the checkpoint row, as the stock Postgres
# saver does with primitives: repeating a counter or a status on every checkpoint costs less
# than a row (and its index entry) of its own in the blobs table, which on SQLite means fewer
# pages written, and flushed, per step.
_INLINE_CHARS = 256


def inline_value(value: Any) -> bool:
    kind = type(value)
    if kind is str or kind is bytes:
        return len(value) <= _INLINE_CHARS
    if kind is int:
        return bool(-(2**63) <= value < 2**64)  # what msgpack holds as a plain integer
    return value is None or kind is float or kind is bool


@dataclass(frozen=True, slots=True)
class Encoder:
    """Encodes a saver's writes with its codec (encryption), serde and list cache."""

    codec: Codec
    serde: SerializerProtocol
    lists: ListCache

    def checkpoint_row(self, config: RunnableConfig, checkpoint: Checkpoint,
                        inline: dict[str, Any], metadata: CheckpointMetadata,
                        principal: Principal | None, tid: str, ns: str,
                        parent: str | None, holder: str | None) -> tuple[Any, ...]:
        """The checkpoint's row; ``holder``: the run holding the thread's lease, if any."""
        # The versions live in their own column (queries need them); an encrypted checkpoint
        # also seals a copy, so that a reader can tell the column was not rolled back.
        dropped = ("channel_values",) if self.codec.cipher else ("channel_values",
                                                                  "channel_versions")
        stored: dict[str, Any] = {k: v for k, v in checkpoint.items() if k not in dropped}
        stored["channel_values"] = inline
        ctype, cblob = self.codec.dump(self.serde, stored,
                                       at_checkpoint(tid, ns, checkpoint["id"]))
        md = dict(get_serializable_checkpoint_metadata(config, metadata))
        if principal is not None:  # flattened, so list(filter=...) can find them
            md["tenant"] = principal.tenant
            md["principal_id"] = principal.id
        if "run_id" not in md and holder is not None:
            md["run_id"] = holder  # the root run holding the lease wrote it
        run_id = md.get("run_id")
        return (tid, ns, checkpoint["id"], parent, str(run_id) if run_id is not None else None,
                ctype, cblob, dump_json(md), dump_json(checkpoint["channel_versions"]))

    def plan_blob(self, tid: str, ns: str, channel: str, version: str, value: Any,
                   incarnation: float, ctx: WriteCtx | None
                   ) -> tuple[tuple[Any, ...], tuple[str, str] | None]:
        """The row that stores one channel value, whole or as a delta of a list (``deltas``),
        and the (channel, version) of the delta's base, which must still exist."""
        key = (tid, ns, channel)
        delta = plan(value, self.lists.get(key, incarnation)) if ctx is not None else None
        if delta is None:
            payload, base, keep, depth = value, None, None, 0
        else:
            payload, base, keep, depth = delta.items, delta.base, delta.keep, delta.depth
        if ctx is not None:
            ctx.lists[key] = (Known(version, tuple(value), depth, incarnation)
                              if type(value) is list else None)
        btype, blob = self.codec.dump(self.serde, payload, at_blob(tid, ns, channel, version))
        row = (tid, ns, channel, version, btype, blob, base, keep, depth)
        return row, (channel, base) if base is not None else None
