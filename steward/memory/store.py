"""``MemoryStore``: LangGraph's ``BaseStore``, scoped by identity, in the runtime's database.

``rt.store`` is one: graphs compiled with ``store=rt.store`` get it injected into their nodes,
where it acts for the run's principal (and the team agent acting for them); outside a run,
``rt.store.bind(principal)`` acts for that principal. Every read, search and write checks the
namespace's space (``steward.memory.space``); every write passes the memory rules
(``MemoryRules``: its purpose and retention, refused categories, the hook) and then the
runtime's redactor; an expired item is gone from reads at once and from the database at the
next ``rt.sweep()``. Values are stored with the runtime's serializer, sealed when it encrypts.

Semantic recall ranks the items in reach by cosine similarity with the query's embedding: on
PostgreSQL with pgvector (``steward.memory.pgvector``) through an HNSW index, elsewhere by an
exact scan (``steward.memory.vectors``). Either way the same filters decide what is in reach
(the index's candidates pass the tenant, space and policy checks of the exact scan, and a page
the index cannot fill is completed by the exact scan), and the scores are computed the same way.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_config
from langgraph.store.base import (
    NOT_PROVIDED,
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    NotProvided,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)
from langgraph.store.base.embed import get_text_at_path, tokenize_path

from steward.errors import ConfigError, MemoryAccessDenied, MemoryRefused
from steward.guardrails.policy import PolicyRequest, ThreadFacts
from steward.guardrails.redact import Redactor
from steward.identity import Principal, agent_from_config, principal_from_config
from steward.memory.pgvector import (
    HNSW_MAX_DIMS,
    Recall,
    VectorSupport,
    detect_op,
    dims_of,
    index_op,
    literal,
)
from steward.memory.rules import MemoryRules
from steward.memory.space import Space, Who, denied, space_of
from steward.memory.vectors import MiniLMEmbeddings, encode, scores
from steward.storage.codec import Codec
from steward.storage.drivers import Driver
from steward.storage.ops import Op as DbOp
from steward.storage.ops import Stmt

if TYPE_CHECKING:
    from steward.context import NodeServices

__all__ = ["MemoryStore"]

_COLS = "namespace, key, scope, type, value, embedding, created_at, updated_at"
_WHOSE = "COALESCE(subject, '')"  # whose data key seals a value (per-person data keys)
_LIGHT = "namespace, key, scope, embedding, created_at, updated_at"  # what ranking needs
_LIVE = "(expires_at IS NULL OR expires_at > ?)"
_SCREEN = Redactor.default()  # refused categories are found with every detector
_CANDIDATES = 40  # the index's first candidates for a page (at least twice the page)
_MAX_CANDIDATES = 10_240  # beyond that many candidates a page is the exact scan's to fill


def _ns(namespace: tuple[str, ...]) -> str:
    return ".".join(namespace)


def _when(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": operator.eq, "$ne": operator.ne, "$gt": operator.gt, "$gte": operator.ge,
    "$lt": operator.lt, "$lte": operator.le,
}


def _matches(value: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    """LangGraph's filter: top-level keys equal, or compared with $eq/$ne/$gt/$gte/$lt/$lte."""
    for key, want in (filter or {}).items():
        have = value.get(key)
        if isinstance(want, Mapping) and want and all(str(k).startswith("$") for k in want):
            for op, operand in want.items():
                if op not in _OPS:
                    raise ConfigError(f"unknown filter operator {op!r}: use $eq, $ne, $gt, "
                                      "$gte, $lt or $lte.")
                try:
                    ok = _OPS[op](have, operand)
                except TypeError:
                    ok = False
                if not ok:
                    return False
        elif have != want:
            return False
    return True


class MemoryStore(BaseStore):
    """See the module docstring. ``principal``: whom this view acts for (``bind``)."""

    supports_ttl = True

    def __init__(self, runtime: NodeServices, rules: MemoryRules,
                 principal: Principal | None = None) -> None:
        self.runtime = runtime
        self.rules = rules
        self.principal = principal
        self._embeddings: Any = rules.embeddings
        self._recall = Recall(rules)

    def bind(self, principal: Principal | Mapping[str, Any]) -> MemoryStore:
        """This store, acting for ``principal`` (outside a run)."""
        view = MemoryStore(self.runtime, self.rules, Principal.parse(principal))
        view._embeddings = self._embeddings
        view._recall = self._recall
        return view

    def __repr__(self) -> str:
        who = f" as {self.principal.id!r}" if self.principal else ""
        return f"<steward.MemoryStore {self.runtime.checkpointer.driver.url}{who}>"

    # -- who asks ------------------------------------------------------------------------------

    @staticmethod
    def _run_config() -> RunnableConfig | None:
        """The config of the run this call is made in (a node's), or None outside a run."""
        try:
            return get_config()
        except RuntimeError:
            return None

    def _who(self) -> Who:
        if self.principal is not None:
            return Who(self.principal)
        config = self._run_config()
        person = principal_from_config(config)
        if person is None:
            raise MemoryAccessDenied(
                "memories belong to someone: use rt.store.bind(principal) outside a run, or "
                "run the graph with rt.config(thread_id, principal).")
        return Who(person, agent_from_config(config, person))

    def _may(self, who: Who, space: Space, need: Literal["read", "write"],
             decided: dict[str, bool] | None = None) -> bool:
        if space.tenant != who.person.tenant:
            return False
        if space.kind != "team":
            return who.owns(space)
        if decided is not None and space.scope in decided:
            return decided[space.scope]
        guardrails = self.runtime.guardrails
        allowed = True
        if guardrails.policies:
            decision = guardrails.decide(PolicyRequest(
                who.actor, f"memory_{need}", {"space": space.name},
                ThreadFacts(f"memory:{space.scope}", space.tenant, None),
                ("MemorySpace", space.name)), strict=False)
            allowed = decision.allowed
        if decided is not None:
            decided[space.scope] = allowed
        return allowed

    def _check(self, who: Who, namespace: tuple[str, ...],
               need: Literal["read", "write"]) -> Space:
        space = space_of(namespace)
        if not self._may(who, space, need):
            raise denied(who, space, need)
        return space

    # -- embeddings ------------------------------------------------------------------------------

    def _embedder(self) -> Any:
        if self._embeddings is None:
            self._embeddings = MiniLMEmbeddings()
        return self._embeddings

    def _texts(self, value: Mapping[str, Any], index: Literal[False] | list[str] | None
               ) -> str | None:
        fields = self.rules.fields if index is None else (index or None)
        if not fields:
            return None
        parts = [text for path in fields
                 for text in get_text_at_path(value, tokenize_path(path)) if text]
        return "\n".join(parts) if parts else None

    # -- operations ------------------------------------------------------------------------------

    def _get_op(self, who: Who, op: GetOp, now: float) -> DbOp[Item | None]:
        self._check(who, op.namespace, "read")
        row = (yield Stmt(f"SELECT {_COLS}, tenant, {_WHOSE} FROM steward_memory WHERE "
                          f"namespace = ? AND key = ? AND {_LIVE}",
                          (_ns(op.namespace), op.key, now))).one()
        if row is None:
            return None
        codecs = yield from self.runtime.checkpointer.codec.subjects_op(row[8], [row[9]])
        return Item(value=self._value(codecs[row[9]], row[0], row[1], row[3], row[4]),
                    key=row[1], namespace=op.namespace, created_at=_when(row[6]),
                    updated_at=_when(row[7]))

    def _value(self, codec: Codec, namespace: Any, key: Any, type_: str,
               blob: bytes | None) -> dict[str, Any]:
        """A stored value, opened with the codec of whom it is about (per-person data keys:
        ``Codec.subjects_op``; else the runtime's)."""
        value = codec.load(self.runtime.checkpointer.serde, type_, blob,
                           f"memory {namespace}/{key}", ("memory", str(namespace), str(key)))
        return dict(value)

    def _prepare_put(self, who: Who, op: PutOp, purpose: str | None, subject: str | None,
                     now: float) -> tuple[Any, ...] | None:
        """The row a write stores (None: a delete), after every rule, its vector still to come
        (nothing refused is ever embedded); raises MemoryRefused."""
        space = self._check(who, op.namespace, "write")
        if op.value is None:
            return None
        if not isinstance(op.key, str) or not op.key:
            raise ConfigError(f"a memory key is a non-empty string, got {op.key!r}.")
        chosen, keep = self.rules.purpose_of(purpose)
        self.rules.screen(op.namespace, op.key, op.value, chosen, _SCREEN)
        if op.ttl is not None:  # LangGraph's ttl, in minutes: it can shorten the purpose's
            keep = op.ttl * 60 if keep is None else min(keep, op.ttl * 60)
        value = self.runtime.redactor.redact(dict(op.value))
        owner = subject if subject is not None else \
            space.name if space.kind == "user" else None
        # The value is sealed by _put_op, with the data key of whom it is about (if any).
        return (_ns(op.namespace), op.key, space.tenant, space.scope, owner, chosen, None,
                value, None, now, now, now + keep if keep is not None else None)

    def _plan_put(self, who: Who, op: PutOp, purpose: str | None, subject: str | None,
                  now: float) -> tuple[tuple[Any, ...] | None, MemoryRefused | None]:
        """A write after the rules: its row (None: a delete), or the refusal, already recorded
        for the audit (the caller writes it with ``_refusal_op`` and raises it)."""
        try:
            return self._prepare_put(who, op, purpose, subject, now), None
        except MemoryRefused as exc:
            self._record_refusal(who, op, purpose, exc)
            return None, exc

    def _put_op(self, op: PutOp, row: tuple[Any, ...] | None, vector: bytes | None,
                support: VectorSupport | None = None) -> DbOp[None]:
        """Write (or delete) an item; with pgvector (``support``), its vector also goes into
        ``vec``, and the first vector of a dimension builds that dimension's index."""
        if row is None:
            yield Stmt("DELETE FROM steward_memory WHERE namespace = ? AND key = ?",
                       (_ns(op.namespace), op.key), wait=False)
            return
        saver = self.runtime.checkpointer
        whose = row[4] or ""  # per-person data keys: the person's (made with the first)
        codec = (yield from saver.codec.subjects_op(row[2], [whose], create=True))[whose]
        vtype, blob = codec.dump(saver.serde, row[7], ("memory", row[0], row[1]))
        cols, marks, params = "", "", [*row[:6], vtype, blob, vector, *row[9:]]
        if support is not None and support.schema is not None:
            cols, marks = ", vec", f", ?::{support.schema}.vector"
            params.append(literal(vector) if vector is not None else None)
            dims = dims_of(vector) or 0
            if 0 < dims <= HNSW_MAX_DIMS and dims not in support.indexed:
                yield from index_op(support.schema, dims)
        yield Stmt(
            "INSERT INTO steward_memory (namespace, key, tenant, scope, subject, purpose, type, "
            f"value, embedding, created_at, updated_at, expires_at{cols}) VALUES "
            f"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?{marks}) ON CONFLICT (namespace, key) DO UPDATE "
            "SET tenant = excluded.tenant, scope = excluded.scope, subject = excluded.subject, "
            "purpose = excluded.purpose, type = excluded.type, value = excluded.value, "
            "embedding = excluded.embedding, updated_at = excluded.updated_at, "
            f"expires_at = excluded.expires_at{', vec = excluded.vec' if cols else ''}",
            params, wait=False)

    def _scopes(self, who: Who) -> list[str]:
        mine = [f"user:{who.person.id}"]
        mine += [f"agent:{p.id}" for p in (who.agent, who.person)
                 if p is not None and p.kind == "service"]
        return mine

    def _reach(self, who: Who, prefix: tuple[str, ...], now: float
               ) -> tuple[str, list[Any]] | None:
        """The SQL condition (and its parameters) of the live rows under ``prefix`` in the
        scopes ``who`` may read, team spaces included (the policy decides those per row, in
        ``_in_reach``); None: nothing (another tenant's prefix)."""
        if not prefix or prefix[0] != who.person.tenant:
            return None  # another tenant's memories are not there for this principal
        mine = self._scopes(who)
        sql = (f"tenant = ? AND {_LIVE} AND (scope IN ({', '.join('?' for _ in mine)}) OR "
               "substr(scope, 1, 5) = 'team:')")
        params: list[Any] = [who.person.tenant, now, *mine]
        if len(prefix) > 1:
            joined = _ns(prefix)
            sql += " AND (namespace = ? OR substr(namespace, 1, ?) = ?)"
            params += [joined, len(joined) + 1, joined + "."]
        return sql, params

    def _in_reach(self, who: Who, prefix: tuple[str, ...], rows: Iterable[Any],
                  decided: dict[str, bool], reach: dict[str, bool]) -> list[Any]:
        """The rows (namespace first) under ``prefix`` in spaces ``who`` may read (team spaces:
        the policy decides, once per space; ``reach`` remembers each namespace)."""
        kept = []
        for row in rows:
            joined = str(row[0])
            if joined not in reach:
                ns = tuple(joined.split("."))
                reach[joined] = ns[:len(prefix)] == prefix and \
                    self._may(who, space_of(ns), "read", decided)
            if reach[joined]:
                kept.append(row)
        return kept

    def _search_rows(self, who: Who, prefix: tuple[str, ...], now: float,
                     columns: str = _LIGHT) -> DbOp[list[Any]]:
        """Live rows under ``prefix`` in the spaces ``who`` may read; ``columns`` start with
        namespace, key."""
        found = self._reach(who, prefix, now)
        if found is None:
            return []
        where, params = found
        rows = (yield Stmt(f"SELECT {columns} FROM steward_memory WHERE {where}", params)).rows
        return self._in_reach(who, prefix, rows, {}, {})

    @staticmethod
    def _ranked(query: Sequence[float], rows: Sequence[Any]) -> list[tuple[float, Any]]:
        """``rows`` (their vector fourth) with a vector of the query's dimension, by cosine
        similarity, best first. Items embedded at another dimension (other embeddings) are
        not compared; if no item has the query's dimension, that is an error."""
        dims = len(query)
        with_vectors = [r for r in rows if r[3] is not None]
        same = [r for r in with_vectors if len(r[3]) == 4 * dims]
        if with_vectors and not same:
            stored = sorted({len(r[3]) // 4 for r in with_vectors})
            raise ConfigError(f"the query's embedding has {dims} dimensions, the stored ones "
                              f"{', '.join(map(str, stored))}: search with the embeddings the "
                              "items were written with.")
        return sorted(zip(scores(query, [bytes(r[3]) for r in same]), same, strict=True),
                      key=lambda p: -p[0])

    def _search_op(self, who: Who, op: SearchOp, query: Sequence[float] | None,
                   now: float) -> DbOp[list[SearchItem]]:
        """The exact scan. Rank first, on the light columns (vectors, times), then read and
        filter values in rank order until the page is full: a query decodes a page's worth of
        values, not every value in reach."""
        rows = yield from self._search_rows(who, op.namespace_prefix, now)
        ranked: list[tuple[float | None, Any]]
        if query is not None:
            ranked = list(self._ranked(query, rows))
        else:
            ranked = [(None, r) for r in sorted(rows, key=lambda r: -float(r[5]))]
        wanted, page = op.offset + op.limit, []
        chunk = max(op.limit * 2, 20)
        for start in range(0, len(ranked), chunk):
            part = ranked[start:start + chunk]
            where = " OR ".join("(namespace = ? AND key = ?)" for _ in part)
            found = {(r[0], r[1]): r for r in (yield Stmt(
                f"SELECT namespace, key, type, value, {_WHOSE} FROM steward_memory WHERE "
                f"{where}", [x for _, r in part for x in (r[0], r[1])])).rows}
            codecs = yield from self.runtime.checkpointer.codec.subjects_op(
                who.person.tenant, {r[4] for r in found.values()})
            for score, row in part:
                stored = found.get((row[0], row[1]))
                if stored is None:
                    continue  # deleted since the ranking read
                value = self._value(codecs[stored[4]], *stored[:4])
                if _matches(value, op.filter):
                    page.append((score, row, value))
            if len(page) >= wanted:
                break
        return self._items(page[op.offset:wanted])

    @staticmethod
    def _items(page: Iterable[tuple[float | None, Any, dict[str, Any]]]) -> list[SearchItem]:
        return [SearchItem(namespace=tuple(str(r[0]).split(".")), key=r[1], value=v,
                           created_at=_when(r[4]), updated_at=_when(r[5]), score=score)
                for score, r, v in page]

    def _index_search_op(self, who: Who, op: SearchOp, query: Sequence[float], now: float,
                         schema: str) -> DbOp[list[SearchItem]]:
        """Recall through pgvector's HNSW index, in one transaction (its settings are local
        to it). The index only proposes candidates, nearest first: the same conditions as the
        exact scan's pick those in reach (tenant, live, scope and prefix in SQL, the policy
        and the prefix again here), the same function scores them, and values are decoded
        and filtered in that order. Iterative index scans (pgvector 0.8) keep proposing past
        rows the conditions drop; if the page is still not full, more candidates are asked
        for (without the team spaces the policy closed meanwhile), and past
        ``_MAX_CANDIDATES``, or when the index runs out (it stops after
        ``hnsw.max_scan_tuples``), the exact scan fills the page: never fewer items than the
        exact scan finds."""
        found = self._reach(who, op.namespace_prefix, now)
        if found is None:
            return []
        where, params = found
        blob = encode(query)
        dims, vec = len(blob) // 4, literal(blob)
        yield Stmt("SET LOCAL hnsw.iterative_scan = relaxed_order", wait=False)
        yield Stmt(f"SET LOCAL hnsw.ef_search = {int(self.rules.ef_search)}", wait=False)
        wanted = op.offset + op.limit
        limit = max(2 * wanted, _CANDIDATES)
        decided: dict[str, bool] = {}
        reach: dict[str, bool] = {}
        while True:
            # Team spaces the policy closed to ``who`` in an earlier round: left out in SQL.
            closed = sorted(scope for scope, ok in decided.items() if not ok)
            unless = f" AND scope NOT IN ({', '.join('?' for _ in closed)})" if closed else ""
            rows = (yield Stmt(
                f"SELECT {_LIGHT}, type, value, {_WHOSE} FROM steward_memory WHERE "
                f"{where}{unless} AND {schema}.vector_dims(vec) = {dims} ORDER BY "
                f"vec::{schema}.vector({dims}) OPERATOR({schema}.<#>) "
                f"?::{schema}.vector({dims}) LIMIT {limit}", [*params, *closed, vec])).rows
            page = []
            ranked = self._ranked(query, self._in_reach(who, op.namespace_prefix, rows,
                                                        decided, reach))
            codecs = yield from self.runtime.checkpointer.codec.subjects_op(
                who.person.tenant, {row[8] for _, row in ranked})
            for score, row in ranked:
                value = self._value(codecs[row[8]], row[0], row[1], row[6], row[7])
                if _matches(value, op.filter):
                    page.append((score, row, value))
                    if len(page) >= wanted:
                        return self._items(page[op.offset:wanted])
            if len(rows) < limit or limit >= _MAX_CANDIDATES:
                return (yield from self._search_op(who, op, query, now))
            limit *= 4

    def _namespaces(self, rows: Iterable[Any], op: ListNamespacesOp) -> list[tuple[str, ...]]:
        found = set()
        for row in rows:
            ns = tuple(str(row[0]).split("."))
            if not all(self._condition(ns, c) for c in op.match_conditions or ()):
                continue
            found.add(ns[:op.max_depth] if op.max_depth is not None else ns)
        return sorted(found)[op.offset:op.offset + op.limit]

    @staticmethod
    def _condition(ns: tuple[str, ...], condition: Any) -> bool:
        path = tuple(condition.path)
        part = ns[:len(path)] if condition.match_type == "prefix" else ns[-len(path):]
        return len(ns) >= len(path) and all(p == "*" or p == n
                                            for p, n in zip(path, part, strict=True))

    # -- what the database offers recall ---------------------------------------------------------

    def _support(self, driver: Driver, dims: int | None) -> VectorSupport | None:
        """pgvector's support here (None: not PostgreSQL), asked when not known or stale."""
        if driver.dialect != "postgres":
            return None
        if self._recall.stale(dims):
            return self._recall.found(driver.run(detect_op(), write=False))
        return self._recall.support

    async def _asupport(self, driver: Driver, dims: int | None) -> VectorSupport | None:
        if driver.dialect != "postgres":
            return None
        if self._recall.stale(dims):
            return self._recall.found(await driver.arun(detect_op(), write=False))
        return self._recall.support

    def recall_info(self) -> dict[str, Any]:
        """How semantic recall ranks here: ``method`` is ``"hnsw"`` (pgvector's index, for the
        ``dimensions`` listed; other dimensions use the exact scan) or ``"exact"``, with the
        ``reason``; ``pgvector`` is the extension's version in this database, if any."""
        driver = self.runtime.checkpointer.driver
        self._recall.support = None  # ask the database now
        return self._recall.info(self._support(driver, None))

    async def arecall_info(self) -> dict[str, Any]:
        driver = self.runtime.checkpointer.driver
        self._recall.support = None
        return self._recall.info(await self._asupport(driver, None))

    # -- BaseStore -------------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        return [self._one(op) for op in ops]

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return [await self._aone(op) for op in ops]

    def _one(self, op: Op, purpose: str | None = None, subject: str | None = None) -> Result:
        who, now, driver = self._who(), time.time(), self.runtime.checkpointer.driver
        if isinstance(op, GetOp):
            return driver.run(self._get_op(who, op, now), write=False)
        if isinstance(op, PutOp):
            row, refused = self._plan_put(who, op, purpose, subject, now)
            if refused is not None:
                driver.run(self._refusal_op(who), write=True)
                raise refused
            vector = self._vector_sync(op) if row is not None else None
            support = self._support(driver, dims_of(vector)) if row is not None else None
            driver.run(self._put_op(op, row, vector, support), write=True)
            self._recall.built(support, vector)
            return None
        if isinstance(op, SearchOp):
            query = self._embedder().embed_query(op.query) if op.query else None
            schema = (self._recall.index(self._support(driver, len(query)), query)
                      if query else None)
            if query is not None and schema is not None:  # a transaction: SET LOCAL
                return driver.run(self._index_search_op(who, op, query, now, schema),
                                  write=True)
            return driver.run(self._search_op(who, op, query, now), write=False)
        if isinstance(op, ListNamespacesOp):
            rows = driver.run(self._search_rows(who, (who.person.tenant,), now, "namespace"),
                              write=False)
            return self._namespaces(rows, op)
        raise ConfigError(f"unknown store operation {type(op).__name__}.")

    async def _aone(self, op: Op, purpose: str | None = None,
                    subject: str | None = None) -> Result:
        who, now, driver = self._who(), time.time(), self.runtime.checkpointer.driver
        if isinstance(op, GetOp):
            return await driver.arun(self._get_op(who, op, now), write=False)
        if isinstance(op, PutOp):
            row, refused = self._plan_put(who, op, purpose, subject, now)
            if refused is not None:
                await driver.arun(self._refusal_op(who), write=True)
                raise refused
            vector = await self._vector_async(op) if row is not None else None
            support = await self._asupport(driver, dims_of(vector)) if row is not None else None
            await driver.arun(self._put_op(op, row, vector, support), write=True)
            self._recall.built(support, vector)
            return None
        if isinstance(op, SearchOp):
            query = await self._embedder().aembed_query(op.query) if op.query else None
            schema = self._recall.index(await self._asupport(driver, len(query)), query) \
                if query else None
            if query is not None and schema is not None:
                return await driver.arun(self._index_search_op(who, op, query, now, schema),
                                         write=True)
            return await driver.arun(self._search_op(who, op, query, now), write=False)
        if isinstance(op, ListNamespacesOp):
            rows = await driver.arun(self._search_rows(who, (who.person.tenant,), now,
                                                       "namespace"), write=False)
            return self._namespaces(rows, op)
        raise ConfigError(f"unknown store operation {type(op).__name__}.")

    def _record_refusal(self, who: Who, op: PutOp, purpose: str | None,
                        exc: MemoryRefused) -> None:
        """A refused write is audited: in the run's thread inside a run (written with the
        run's next write), else in the tenant's memory chain (``memory:<tenant>``, written by
        ``_refusal_op``). The event names the key and the reason, never the refused value."""
        config = self._run_config() if self.principal is None else None
        thread = ((config or {}).get("configurable") or {}).get("thread_id")
        self.runtime.audit.record(
            str(thread or f"memory:{who.person.tenant}"), "memory_refused",
            {"namespace": list(op.namespace), "key": op.key, "purpose": purpose,
             "reason": str(exc)}, principal=who.actor, redact=False)

    def _refusal_op(self, who: Who) -> DbOp[None]:
        yield from self.runtime.audit.locked_flush_op(f"memory:{who.person.tenant}")

    def _vector_sync(self, op: PutOp) -> bytes | None:
        text = self._texts(op.value, op.index) if op.value is not None else None
        return encode(self._embedder().embed_documents([text])[0]) if text else None

    async def _vector_async(self, op: PutOp) -> bytes | None:
        text = self._texts(op.value, op.index) if op.value is not None else None
        if not text:
            return None
        return encode((await self._embedder().aembed_documents([text]))[0])

    def put(self, namespace: tuple[str, ...], key: str, value: Mapping[str, Any],
            index: Literal[False] | list[str] | None = None, *,
            ttl: float | NotProvided | None = NOT_PROVIDED, purpose: str | None = None,
            subject: str | None = None) -> None:
        """Store ``value`` for ``purpose`` (see MemoryRules); ``subject``: whose personal data
        it is (``rt.erase(subject)`` removes it; default: the user of a user space);
        ``index``: fields to embed for semantic recall; ``ttl``: minutes, at most the
        purpose's retention."""
        self._one(PutOp(namespace, key, dict(value), index,
                        None if isinstance(ttl, NotProvided) else ttl), purpose, subject)

    async def aput(self, namespace: tuple[str, ...], key: str, value: Mapping[str, Any],
                   index: Literal[False] | list[str] | None = None, *,
                   ttl: float | NotProvided | None = NOT_PROVIDED, purpose: str | None = None,
                   subject: str | None = None) -> None:
        await self._aone(PutOp(namespace, key, dict(value), index,
                               None if isinstance(ttl, NotProvided) else ttl), purpose, subject)

    # -- upkeep ----------------------------------------------------------------------------------

    def sweep_op(self, now: float) -> DbOp[int]:
        """Delete expired memories; returns how many."""
        res = yield Stmt("DELETE FROM steward_memory WHERE expires_at IS NOT NULL AND "
                         "expires_at <= ?", (now,))
        return max(int(res.rowcount), 0)
