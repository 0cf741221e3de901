"""A checkpoint's rows, decoded: the checkpoint with its small values inline, the other values
whole or rebuilt from their delta chains, and its pending writes; what the saver reads with.

Decoding checks what encryption sealed: the versions column against the sealed copy, and each
payload against its place (``steward.storage.places``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from langgraph.checkpoint.base import Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.serde.base import SerializerProtocol

from steward.checkpointers.deltas import Key, Known, ListCache, rebuild
from steward.checkpointers.sql import Sql
from steward.errors import PayloadCorrupted
from steward.storage.codec import Codec, load_json
from steward.storage.ops import Batch, Op, Result, Stmt
from steward.storage.places import at_blob, at_checkpoint, at_write

__all__ = ["Decoder"]


@dataclass(frozen=True, slots=True)
class Decoder:
    """Decodes a saver's rows with its SQL dialect, codec (encryption) and serde."""

    sql: Sql
    codec: Codec
    serde: SerializerProtocol
    # The lists this process last stored or read (deltas): a value stored at the version a
    # checkpoint names is that list, so reading the latest state of a growing history costs
    # a copy of the list, not decoding it (items are not changed in place: see deltas).
    lists: ListCache | None = None

    def load_tuple_op(self, row: tuple[Any, ...],
                    learn: dict[Key, Known | None] | None = None,
                    incarnation: float = 0.0) -> Op[CheckpointTuple]:
        """Decode a checkpoint row with its channel values and pending writes (one round
        trip). With ``learn``, note the lists read, so that the next write of them can be a
        delta (``deltas``)."""
        checkpoint = self.decode(row)
        served = self._known(row, checkpoint, incarnation) if learn is not None else {}
        results = yield self.tuple_stmts(row, checkpoint, served)
        return self.tuple_from(row, checkpoint, results, learn, incarnation, served)

    def load_latest_op(self, row: tuple[Any, ...], writes: Result,
                       learn: dict[Key, Known | None], incarnation: float
                       ) -> Op[CheckpointTuple]:
        """As ``load_tuple_op``, for a latest checkpoint whose writes were read with it
        (``Sql.select_latest_writes``): no round trip when its values are inline or known."""
        checkpoint = self.decode(row)
        served = self._known(row, checkpoint, incarnation)
        stmts = self.tuple_stmts(row, checkpoint, served)
        results = [writes] if len(stmts) == 1 else [(yield stmts[0]), writes]
        return self.tuple_from(row, checkpoint, results, learn, incarnation, served)

    def _known(self, row: tuple[Any, ...], checkpoint: Checkpoint,
               incarnation: float) -> dict[str, Known]:
        """The checkpoint's list values this process holds already, at their versions."""
        if self.lists is None or not incarnation:
            return {}
        tid, ns = row[:2]
        inline = checkpoint["channel_values"]
        out = {}
        for channel, version in checkpoint["channel_versions"].items():
            if channel not in inline:
                known = self.lists.get((tid, ns, channel), incarnation)
                if known is not None and known.version == str(version):
                    out[channel] = known
        return out

    def decode(self, row: tuple[Any, ...]) -> Checkpoint:
        """The checkpoint of a row, with its small values (see ``_inline``) and the versions
        column checked against the sealed copy when encrypted."""
        tid, ns, cid, _parent, type_, blob, _metadata, versions = row
        where = f"checkpoint {cid!r} of thread {tid!r}"
        checkpoint = cast(Checkpoint, self.codec.load(self.serde, type_, blob, where,
                                                      at_checkpoint(tid, ns, cid)))
        column = load_json(versions) or {}
        sealed = checkpoint.get("channel_versions")
        if sealed is not None and {k: str(v) for k, v in sealed.items()} != \
                {k: str(v) for k, v in column.items()}:
            raise PayloadCorrupted(f"the channel versions of {where} do not match its sealed "
                                   "copy: the row was altered. Restore it from a backup.")
        checkpoint["channel_versions"] = column
        checkpoint["channel_values"] = dict(checkpoint.get("channel_values") or {})
        return checkpoint

    def tuple_stmts(self, row: tuple[Any, ...], checkpoint: Checkpoint,
                    served: Mapping[str, Known] | None = None) -> Batch:
        """What a checkpoint row needs read: the values not kept inline (nor ``served`` from
        this process's lists), with their delta chains, and its writes."""
        tid, ns, cid = row[:3]
        inline = checkpoint["channel_values"]
        pairs: list[Any] = []
        for channel, version in checkpoint["channel_versions"].items():
            if channel not in inline and not (served and channel in served):
                pairs += [channel, str(version)]
        writes = Stmt(self.sql.select_writes, (tid, ns, cid))
        if not pairs:
            return (writes,)
        return (Stmt(self.sql.select_values(len(pairs) // 2),
                     self.sql.select_values_params(tid, ns, pairs)), writes)

    def tuple_from(self, row: tuple[Any, ...], checkpoint: Checkpoint,
                    results: Sequence[Result], learn: dict[Key, Known | None] | None,
                    incarnation: float,
                    served: Mapping[str, Known] | None = None) -> CheckpointTuple:
        tid, ns, cid, parent, _type, _blob, metadata, _versions = row
        where = f"checkpoint {cid!r} of thread {tid!r}"
        column = checkpoint["channel_versions"]
        chains = results[0] if len(results) == 2 else None
        values = checkpoint["channel_values"]
        for channel, known in (served or {}).items():
            values[channel] = list(known.items)
        by_channel: dict[str, list[tuple[Any, ...]]] = {}
        for chain_row in chains.rows if chains is not None else []:
            by_channel.setdefault(chain_row[0], []).append(chain_row)
        for channel, rows in by_channel.items():
            rows.sort(key=lambda r: r[6])  # depth: the full value first
            value = self.rebuild(tid, ns, channel, rows, f"channel {channel!r} of {where}")
            values[channel] = value
            if learn is not None and type(value) is list:
                learn[(tid, ns, channel)] = Known(str(column[channel]), tuple(value),
                                                  len(rows) - 1, incarnation)
        writes = list(results[-1].rows)
        writes.sort(key=lambda w: (w[4], w[0], w[5]))  # writes_sort_key(task_path, task_id, idx)
        pending = [
            (task_id, channel, self.codec.load(self.serde, wtype, wblob, f"a write of {where}",
                                               at_write(tid, ns, cid, task_id, idx)))
            for task_id, channel, wtype, wblob, _path, idx in writes
        ]
        return CheckpointTuple(
            config={"configurable": {"thread_id": tid, "checkpoint_ns": ns, "checkpoint_id": cid}},
            checkpoint=checkpoint,
            metadata=cast(CheckpointMetadata, load_json(metadata)),
            parent_config=(
                {"configurable": {"thread_id": tid, "checkpoint_ns": ns, "checkpoint_id": parent}}
                if parent else None
            ),
            pending_writes=pending,
        )

    def rebuild(self, tid: str, ns: str, channel: str, chain: Sequence[tuple[Any, ...]],
                 label: str) -> Any:
        """A channel value from its chain rows (channel, head, version, keep, type, blob,
        depth), the full value first: decoded whole, or rebuilt from its deltas."""
        if chain[0][3] is not None or [r[6] for r in chain] != list(range(len(chain))):
            raise PayloadCorrupted(f"{label} is stored as a delta whose base is missing: "
                                   "restore the database from a backup or delete the thread.")
        decoded = [(self.codec.load(self.serde, ctype, cblob, label,
                                    at_blob(tid, ns, channel, cversion)), ckeep)
                   for _, _, cversion, ckeep, ctype, cblob, _ in chain]
        return decoded[0][0] if len(decoded) == 1 else rebuild(decoded)

    def compact_op(self, tid: str) -> Op[None]:
        """Store the values the remaining checkpoints use whole, so that their delta chains
        can go (prune keeps the latest checkpoint, not the history behind its values)."""
        heads = (yield Stmt(self.sql.delta_blobs_in_use, (tid, tid))).rows
        for ns, channel, version, _btype, _bblob, _base in heads:
            chain = yield Stmt(self.sql.select_values(1),
                               self.sql.select_values_params(tid, ns, [channel, version]))
            rows = sorted(chain.rows, key=lambda r: r[6])
            value = self.rebuild(tid, ns, channel, rows, f"channel {channel!r} of {tid!r}")
            ntype, nblob = self.codec.dump(self.serde, value, at_blob(tid, ns, channel, version))
            yield Stmt(self.sql.store_whole, (ntype, nblob, tid, ns, channel, version))

