"""``@steward.effect``: side effects that run at most once per call site, whatever re-runs.

LangGraph runs a node again from its first line after an interrupt, a retry or a crash, so a
refund issued before the crash would be issued again. The effect ledger prevents it: each call
of an effect inside a node has a *site* -- the thread, the task (its checkpoint namespace,
stable when the node re-runs for the same step) and the call's order in the task -- and a row
in ``steward_effects``:

1. before the call, an *intent* is committed durably (with the function's name, the hash of
   its arguments and the call's idempotency key), and with it the audit events gathered so
   far (the guard's decision, the approval), so that the trail shows what authorized the
   call even if the process dies during it;
2. the function runs (with ``idempotency_key=`` if it declares that parameter);
3. its result is committed durably (serialized with the runtime's serde, sealed when the
   runtime encrypts), or its error is recorded.

When the node re-runs: a completed call returns its recorded result without acting; a call
that raised runs again; a call with an intent and no outcome (the process died *during* it)
runs again with the same idempotency key, so that the other system can recognise the retry --
or, if the effect has a ``reconcile`` hook, the hook looks and says what happened. A re-run
that calls with other arguments at the same site raises EffectConflict and changes nothing.

The task is stable only if the checkpoint that scheduled it was committed before it ran:
``durability="sync"``, ``rt.config``'s default. With ``"async"`` a crash right after the call
can lose that checkpoint, and the re-scheduled task (another id, another site) acts again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import hashlib
import inspect
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar, cast, overload

from steward.context import Flow, NodeContext, UserCall, current, run_async, run_sync
from steward.errors import ConfigError, EffectConflict
from steward.storage.codec import Codec
from steward.storage.ops import Op, Stmt
from steward.storage.places import at_effect

__all__ = ["RETRY", "effect", "erase_results_op"]

F = TypeVar("F", bound=Callable[..., Any])

INTENT, DONE, ERROR, UNSTORABLE = "intent", "done", "error", "unstorable"
_KEY_PARAM = "idempotency_key"


class _Retry:
    """What a ``reconcile`` hook returns when the earlier attempt did not take effect."""

    _instance: _Retry | None = None

    def __new__(cls) -> _Retry:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "steward.RETRY"


RETRY = _Retry()


def _canonical(value: Any) -> Any:
    """JSON for an argument, stable across processes: values by content; objects the call
    merely uses (a client, a session) by their type, never by their address."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return {"time": value.isoformat()}
    if isinstance(value, enum.Enum):
        return _canonical(value.value)
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_canonical(v) for v in value), key=repr)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return _canonical(dump())
    return {"object": f"{type(value).__module__}.{type(value).__qualname__}"}


def args_hash(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    plain = {"args": _canonical(list(args)),
             "kwargs": _canonical({k: v for k, v in kwargs.items() if k != _KEY_PARAM})}
    text = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class _Site:
    ctx: NodeContext
    seq: int
    name: str
    hash: str

    @property
    def key(self) -> str:
        """The idempotency key: the same for every attempt at this site, nowhere else."""
        raw = f"{self.ctx.thread_id}\x1f{self.ctx.task_ns}\x1f{self.seq}\x1f{self.name}"
        return "stw-" + hashlib.sha256(raw.encode()).hexdigest()[:32]

    @property
    def where(self) -> str:
        return (f"effect {self.name} (call {self.seq} of task {self.ctx.task_ns!r}, thread "
                f"{self.ctx.thread_id!r})")


@dataclass(frozen=True)
class _Plan:
    """What to do at a site: replay a result, or call (again) with the key."""

    replay: bool
    result: Any = None
    key: str = ""
    reconcile: bool = False  # an intent with no outcome: the call may have happened
    codec: Codec | None = None  # seals the result: the thread's (its data key, if it has one)


def _codec_op(site: _Site) -> Op[Codec]:
    """The codec of the site's thread: with per-thread data keys, the thread's key -- from
    the cache while this process's run holds the thread's lease (nobody may delete or erase
    the thread meanwhile), else read (or made) with the ledger's row."""
    ctx = site.ctx
    saver = ctx.runtime.checkpointer
    cached = saver.codec.thread(ctx.thread_id)
    if cached is not None and ctx.thread_id in saver.threads.leases:
        return cached
    tenant = ctx.principal.tenant if ctx.principal is not None else None
    return (yield from saver.codec.thread_op(ctx.thread_id, tenant, create=True))


def _begin(site: _Site, explicit_key: str | None) -> Op[_Plan]:
    ctx = site.ctx
    saver = ctx.runtime.checkpointer
    codec = yield from _codec_op(site)
    where = (ctx.thread_id, ctx.task_ns, site.seq)
    row = (yield Stmt("SELECT name, args_hash, idempotency_key, status, type, result "
                      "FROM steward_effects WHERE thread_id = ? AND task_ns = ? AND seq = ?",
                      where)).one()
    if row is None:
        key = explicit_key or site.key
        yield from _authorized(ctx)
        yield Stmt("INSERT INTO steward_effects (thread_id, task_ns, seq, name, args_hash, "
                   "idempotency_key, status, attempts, started_at) VALUES "
                   "(?, ?, ?, ?, ?, ?, ?, 1, ?)",
                   (*where, site.name, site.hash, key, INTENT, time.time()))
        return _Plan(replay=False, key=key, codec=codec)
    name, hashed, key, status, rtype, blob = row
    if (name, hashed) != (site.name, site.hash):
        what = "another function" if name != site.name else "other arguments"
        raise EffectConflict(
            f"{site.where} was first called as {name} with arguments {hashed[:19]}..., and "
            f"the node, running again, now calls {what} there. A node must call its effects "
            "in the same order with the same arguments each time it runs: take them from the "
            "state, not from the clock or the outside world. Nothing was called or recorded.")
    if status == UNSTORABLE:
        raise ConfigError(f"{site.where} happened, but its result could not be stored, so it "
                          "can be neither replayed nor repeated: make the effect return plain "
                          "data, then delete the thread or its ledger row.")
    if status == DONE:
        value = codec.load(saver.serde, rtype, blob, site.where,
                           at_effect(*where[:2], site.seq))
        return _Plan(replay=True, result=value, key=key, codec=codec)
    yield from _authorized(ctx)
    yield Stmt("UPDATE steward_effects SET attempts = attempts + 1, started_at = ? "
               "WHERE thread_id = ? AND task_ns = ? AND seq = ?", (time.time(), *where))
    return _Plan(replay=False, key=key, reconcile=status == INTENT, codec=codec)


def _authorized(ctx: NodeContext) -> Op[None]:
    """Before an effect acts, the audit events gathered so far -- the guard's decision, the
    approval that allowed it -- are written with its intent: a process that dies during the
    call leaves a trail that shows what authorized it (the call's own event follows)."""
    yield from ctx.runtime.audit.locked_flush_op(ctx.thread_id)


def _finish(site: _Site, stored: tuple[str, bytes] | None = None, *,
            error: BaseException | None = None, status: str = ERROR) -> Op[None]:
    """Complete a call: with its stored result, or (``error``) as ``status``; the audit
    events gathered so far (the call's own among them) are written with it, so that a side
    effect that happened is in the audit trail even if the process dies right after."""
    where = (site.ctx.thread_id, site.ctx.task_ns, site.seq)
    yield from site.ctx.runtime.audit.locked_flush_op(site.ctx.thread_id)
    if stored is None:
        text = f"{type(error).__name__}: {error}"[:2000]
        yield Stmt("UPDATE steward_effects SET status = ?, error = ?, finished_at = ? "
                   "WHERE thread_id = ? AND task_ns = ? AND seq = ?",
                   (status, text, time.time(), *where))
        return
    yield Stmt("UPDATE steward_effects SET status = ?, type = ?, result = ?, error = NULL, "
               "finished_at = ? WHERE thread_id = ? AND task_ns = ? AND seq = ?",
               (DONE, *stored, time.time(), *where))


def _outcome(site: _Site, result: Any, codec: Codec) -> tuple[Op[None], ConfigError | None]:
    """The write that completes a call that returned ``result``: its stored form, or, if the
    runtime cannot store it, a record that the call happened with an unstorable result (a
    re-run must not act again, and cannot replay it)."""
    saver = site.ctx.runtime.checkpointer
    try:
        stored = codec.dump(saver.serde, result,
                            at_effect(site.ctx.thread_id, site.ctx.task_ns, site.seq))
    except Exception as exc:
        error = ConfigError(
            f"{site.where} returned {type(result).__name__}, which the runtime's serializer "
            f"cannot store ({exc}). The call happened and will not be repeated; return plain "
            "data (dicts, lists, strings, numbers, pydantic models) from effects.")
        return _finish(site, error=error, status=UNSTORABLE), error
    return _finish(site, stored), None


def _site(name: str, allow_outside: bool, args: tuple[Any, ...],
          kwargs: dict[str, Any]) -> _Site | None:
    try:
        ctx = current("effect", need_principal=False)
    except ConfigError:
        if allow_outside:
            return None
        raise
    return _Site(ctx, ctx.next_effect(), name, args_hash(args, kwargs))


def _audit(site: _Site, plan: _Plan) -> None:
    kind = ("effect_replay" if plan.replay else "effect_retry" if plan.reconcile
            else "effect_call")
    site.ctx.audit(kind, {"effect": site.name, "call": site.seq, "args_hash": site.hash,
                          "idempotency_key": plan.key})


def _flow(site: _Site, func: Callable[..., Any], reconcile: Callable[..., Any] | None,
          takes_key: bool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Flow[Any]:
    plan: _Plan = yield _begin(site, kwargs.get(_KEY_PARAM))
    _audit(site, plan)
    if plan.replay:
        return plan.result
    assert plan.codec is not None
    if plan.reconcile and reconcile is not None:
        found = yield UserCall(lambda: reconcile(plan.key, *args, **kwargs))
        if found is not RETRY:
            return (yield from _completed(site, found, plan.codec))
    given = {**kwargs, _KEY_PARAM: plan.key} if takes_key and _KEY_PARAM not in kwargs \
        else kwargs
    try:
        result = yield UserCall(lambda: func(*args, **given))
    except BaseException as exc:
        yield _finish(site, error=exc)
        raise
    return (yield from _completed(site, result, plan.codec))


def _completed(site: _Site, result: Any, codec: Codec) -> Flow[Any]:
    op, error = _outcome(site, result, codec)
    yield op
    if error is not None:
        raise error
    return result


@overload
def effect(fn: F, /) -> F: ...


@overload
def effect(*, reconcile: Callable[..., Any] | None = None, allow_outside: bool = False,
           name: str | None = None) -> Callable[[F], F]: ...


def effect(fn: F | None = None, /, *, reconcile: Callable[..., Any] | None = None,
           allow_outside: bool = False, name: str | None = None) -> F | Callable[[F], F]:
    """Mark a function (or ``async def``) with side effects: inside a node of a graph run
    with a Steward checkpointer, each call site runs at most once per thread (see the module
    docstring).

    - A function with an ``idempotency_key`` parameter receives a key that is the same for
      every attempt at its call site, so the system it calls can drop a repeat.
    - ``reconcile(idempotency_key, *args, **kwargs)``: called instead of the function when a
      previous attempt died mid-call; returns that attempt's result if it took effect, or
      ``steward.RETRY`` to call the function again (with the same key).
    - ``allow_outside=True``: outside a Steward run, just call the function (otherwise that is a
      ConfigError, so that a missing checkpointer cannot silently drop the guarantee).
    - ``name``: what the ledger calls it (default: module and qualified name); keep it stable
      across deployments, or recorded calls will not be recognised.
    """

    def wrap(func: F) -> F:
        label = name or f"{func.__module__}.{func.__qualname__}"
        takes_key = _KEY_PARAM in inspect.signature(func).parameters
        if reconcile is not None and not callable(reconcile):
            raise ConfigError(f"reconcile= for {label} must be a function, got {reconcile!r}.")

        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def arun(*args: Any, **kwargs: Any) -> Any:
                site = _site(label, allow_outside, args, kwargs)
                if site is None:
                    return await func(*args, **kwargs)
                return await run_async(site.ctx, _flow(site, func, reconcile, takes_key, args,
                                                       kwargs))

            return cast(F, arun)

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            site = _site(label, allow_outside, args, kwargs)
            if site is None:
                return func(*args, **kwargs)
            return run_sync(site.ctx, _flow(site, func, reconcile, takes_key, args, kwargs))

        return cast(F, run)

    if fn is not None:
        return wrap(fn)
    return wrap


def erase_results_op(ids: Sequence[str]) -> Op[None]:
    """An erasure: the recorded results and errors of the threads' effects go (the ledger
    keeps that each call happened, so a re-run still does not act again)."""
    if ids:
        marks = ", ".join("?" for _ in ids)
        yield Stmt("UPDATE steward_effects SET result = NULL, type = NULL, error = NULL "
                   f"WHERE thread_id IN ({marks})", tuple(ids), wait=False)
