"""One database URL in, everything a stateful graph needs out.

``steward.open(url)`` gives a :class:`Runtime` holding Steward's checkpointer and a LangGraph
store on the same database, and builds the configs that carry a principal and the run's lease.
``steward.aopen(url)`` is the async twin (use it with ``ainvoke``/``astream``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from types import TracebackType
from typing import Any

from langchain_core.runnables import RunnableConfig

from steward.audit.handler import AuditCallbackHandler
from steward.audit.log import AuditLog
from steward.audit.schema import SCHEMA as AUDIT_SCHEMA
from steward.checkpointers._connect import aopen_saver, open_saver, saver_options
from steward.checkpointers.configs import subjects_of
from steward.checkpointers.lease import AsyncLeaseHandler, LeaseHandler
from steward.checkpointers.saver import StewardSaver
from steward.checkpointers.schema import SCHEMA as SAVER_SCHEMA
from steward.errors import ConfigError, StewardError
from steward.guardrails.approvals import Approvals
from steward.guardrails.guard import Guardrails, policies_of
from steward.guardrails.policy import Policy
from steward.guardrails.redact import Redactor
from steward.guardrails.schema import SCHEMA as GUARDRAILS_SCHEMA
from steward.identity import Principal
from steward.memory.erase import ErasureReceipt, erase_op
from steward.memory.rules import MemoryRules
from steward.memory.schema import SCHEMA as MEMORY_SCHEMA
from steward.memory.store import MemoryStore
from steward.nodes.schema import SCHEMA as LEDGER_SCHEMA
from steward.storage.url import parse_url
from steward.storage.values import str_id

__all__ = ["Runtime", "aopen", "open"]

# The tables of the parts a runtime puts beside the saver's, in the order they are set up.
PARTS = (GUARDRAILS_SCHEMA, LEDGER_SCHEMA, AUDIT_SCHEMA, MEMORY_SCHEMA)
SCHEMAS = (SAVER_SCHEMA, *PARTS)

SETUP_LOCK = 7311662358018  # a Postgres advisory lock key unique to Steward's store setup
# Polled, not waited for: the store's migrations run CREATE INDEX CONCURRENTLY, which waits for
# every open snapshot, including that of another process blocked in pg_advisory_lock.
_TRY_LOCK = "SELECT pg_try_advisory_lock(%s)"


def _locked(row: tuple[Any, ...] | None) -> bool:
    return bool(row and row[0])
_SETUP_TRIES = 5


def _retry_setup(setup: Callable[[], None]) -> None:
    """LangGraph's SQLite store migrates without a lock: when two processes create a database
    at the same moment, one may fail on the other's half-made tables; once the other is done,
    setup is a no-op, so retrying settles it."""
    for attempt in range(_SETUP_TRIES):
        try:
            setup()
            return
        except Exception:
            if attempt == _SETUP_TRIES - 1:
                raise
            time.sleep(0.1 * (attempt + 1))


class Runtime:
    """A checkpointer and a store on one database, plus the configs that use them."""

    def __init__(self, url: str, checkpointer: StewardSaver, *,
                 is_async: bool, stack: contextlib.ExitStack | contextlib.AsyncExitStack,
                 guards: _Guards | None = None) -> None:
        guards = guards or _Guards()
        self.url = url  # masked
        self.checkpointer = checkpointer
        self.is_async = is_async
        self._stack = stack
        # Node-level calls (steward.guard) find the runtime through the run's saver.
        checkpointer.runtime = self
        self.redactor = guards.redactor or Redactor.default()
        self.guardrails = Guardrails.build(checkpointer, guards.policy,
                                           guards.approval_expires_in)
        self.audit = AuditLog(checkpointer, self.redactor,
                              verify_on_resume=guards.verify_on_resume)
        self.approvals = Approvals(self.guardrails.records, checkpointer.driver, self.audit)
        checkpointer.audit = self.audit
        self.prices = guards.prices
        # Long-term memory, scoped by identity (steward.memory): a LangGraph BaseStore.
        self.store = MemoryStore(self, guards.memory)

    def __repr__(self) -> str:
        return f"<steward.Runtime {self.url}>"

    def config(self, thread_id: str, principal: Principal | Mapping[str, Any] | None = None, *,
               ttl: float | None = None, subjects: Sequence[str] = (),
               **configurable: Any) -> RunnableConfig:
        """A RunnableConfig for one thread, acting as ``principal``.

        ``ttl`` (seconds) sets when a thread created by this config expires (see ``sweep``);
        ``subjects`` names the people whose personal data the thread will hold (a customer's
        e-mail, say), recorded on the thread when the run starts, so that ``erase`` reaches
        it (a node can add more with ``steward.add_subjects``); other keyword arguments go
        into ``configurable`` unchanged. Plain LangGraph calls (``invoke``, ``stream``,
        ``get_state``, ``update_state``) take the result as it is.
        """
        tid = str_id(thread_id, "thread_id")
        who = Principal.parse(principal) if principal is not None else None
        about = subjects_of(subjects)
        conf: dict[str, Any] = {**configurable, "thread_id": tid}
        if who is not None:
            conf["principal"] = who
        if ttl is not None:
            if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0:
                raise ConfigError(f"ttl must be a positive number of seconds, got {ttl!r}.")
            ttl = float(ttl)
            conf["steward"] = {"ttl": ttl}
        handler: LeaseHandler | AsyncLeaseHandler = (
            AsyncLeaseHandler(self.checkpointer, tid, who, ttl, about) if self.is_async
            else LeaseHandler(self.checkpointer, tid, who, ttl, about)
        )
        # The audit handler first: its run-end event is gathered before the lease's release,
        # which writes it.
        audit = AuditCallbackHandler(self.audit, tid, who, prices=self.prices,
                                     flush_at_end=False)
        return {"configurable": conf, "callbacks": [audit, handler]}

    def sweep(self) -> list[str]:
        """Delete threads whose time to live has passed and memories whose retention has, and
        close approval requests whose time is up (``rt.approvals.expire()``); returns the
        deleted threads' ids."""
        deleted = self.checkpointer.sweep()
        self.approvals.expire()
        self.checkpointer.driver.run(self.store.sweep_op(time.time()), write=True)
        return deleted

    async def asweep(self) -> list[str]:
        deleted = await self.checkpointer.asweep()
        await self.approvals.aexpire()
        await self.checkpointer.driver.arun(self.store.sweep_op(time.time()), write=True)
        return deleted

    def erase(self, subject: str, *, by: Principal | Mapping[str, Any]) -> ErasureReceipt:
        """Forget a person (``steward.memory.erase``): their memories, the working context of
        the threads they own or are a subject of, and the payloads of their audit events,
        keeping every chain verifiable. ``by`` needs a role granted ``admin`` by
        ``thread_roles`` (raises ThreadAccessDenied, audited, otherwise). Returns the
        receipt; erasing again changes nothing and returns the earlier one."""
        who = Principal.parse(by)
        result = self.checkpointer.driver.run(erase_op(self, str_id(subject, "subject"), who),
                                              write=True)
        return self._erased(result)

    async def aerase(self, subject: str, *,
                     by: Principal | Mapping[str, Any]) -> ErasureReceipt:
        who = Principal.parse(by)
        result = await self.checkpointer.driver.arun(
            erase_op(self, str_id(subject, "subject"), who), write=True)
        return self._erased(result)

    def _erased(self, result: ErasureReceipt | StewardError) -> ErasureReceipt:
        if isinstance(result, StewardError):
            raise result
        self.checkpointer._forget()  # the erased threads' cached rows and lists
        return result

    def close(self) -> None:
        if isinstance(self._stack, contextlib.AsyncExitStack):
            raise ConfigError("this runtime was opened with aopen(): close it with aclose().")
        self._stack.close()

    async def aclose(self) -> None:
        if isinstance(self._stack, contextlib.AsyncExitStack):
            await self._stack.aclose()
        else:
            self._stack.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _Guards:
    """The guardrail options of open()/aopen(), checked before any database is touched."""

    def __init__(self, policy: Policy | list[Policy] | None = None,
                 redactor: Redactor | None = None,
                 approval_expires_in: float | None = None, verify_on_resume: bool = True,
                 prices: Mapping[str, tuple[float, float]] | None = None,
                 memory: MemoryRules | None = None) -> None:
        policies_of(policy)
        if memory is not None and not isinstance(memory, MemoryRules):
            raise ConfigError("memory= takes a steward.MemoryRules, got "
                              f"{type(memory).__name__}.")
        self.memory = memory or MemoryRules()
        if redactor is not None and not isinstance(redactor, Redactor):
            raise ConfigError(f"redactor= takes a steward.Redactor, got {type(redactor).__name__}.")
        if approval_expires_in is not None and (
                isinstance(approval_expires_in, bool)
                or not isinstance(approval_expires_in, (int, float)) or approval_expires_in <= 0):
            raise ConfigError("approval_expires_in must be a positive number of seconds or None, "
                              f"got {approval_expires_in!r}.")
        self.policy = policy
        self.redactor = redactor
        self.approval_expires_in = approval_expires_in
        self.verify_on_resume = bool(verify_on_resume)
        try:
            self.prices = {str(k): (float(v[0]), float(v[1])) for k, v in (prices or {}).items()}
        except (TypeError, ValueError, IndexError) as exc:
            raise ConfigError("prices= maps a model name to (input, output) prices per 1,000 "
                              f"tokens, e.g. {{'gpt-4o-mini': (0.00015, 0.0006)}}: {exc}.") from exc


def open(
    url: str,
    *,
    encryption_key: str | bytes | None = None,
    thread_roles: Mapping[str, str] | None = None,
    default_ttl: float | None = None,
    lease_ttl: float = 30.0,
    pool_size: int = 10,
    policy: Policy | list[Policy] | None = None,
    redactor: Redactor | None = None,
    approval_expires_in: float | None = None,
    verify_on_resume: bool = True,
    prices: Mapping[str, tuple[float, float]] | None = None,
    trust_unidentified: bool = False,
    memory: MemoryRules | None = None,
) -> Runtime:
    """Open a runtime on ``sqlite:///path``, ``sqlite://:memory:`` or ``postgresql://...``.

    Creates or migrates the schema on first use. Usable as a context manager.

    - ``encryption_key``: 32 bytes (hex or base64) to encrypt checkpoints and writes at rest;
      defaults to ``$STEWARD_ENCRYPTION_KEY``.
    - ``thread_roles``: roles that reach other members' threads in the same tenant, and how far:
      ``{"manager": "write", "auditor": "read"}``. Owners always have full access.
    - ``default_ttl``: seconds after which new threads expire and ``sweep()`` deletes them.
    - ``lease_ttl``: seconds a crashed run keeps a thread locked before others may resume it.
    - ``policy``: a :class:`steward.Policy` (or a list; those with ``enforce=False`` run in
      shadow mode) that ``steward.guard`` checks; without one every guarded action is allowed.
    - ``redactor``: masks personal data in approval requests (default: every built-in
      detector); ``approval_expires_in``: default seconds an approval request stays open.
    - ``verify_on_resume``: a paused thread resumes only if its audit chain verifies (else
      AuditTampered); ``prices``: per model, (input, output) price per 1,000 tokens, for the
      cost of model calls in audit events.
    - ``trust_unidentified``: let requests that carry no principal through the access rule.
      Only for a host that has already confined every request to its caller's tenant, such as
      the LangGraph server with ``steward.server.auth``; never otherwise.
    - ``memory``: :class:`steward.MemoryRules` for ``rt.store`` (purposes and retention,
      refused categories, embeddings for semantic recall).
    """
    db = parse_url(url)
    guards = _Guards(policy, redactor, approval_expires_in, verify_on_resume, prices, memory)
    options = saver_options(encryption_key=encryption_key, thread_roles=thread_roles,
                            default_ttl=default_ttl, lease_ttl=lease_ttl,
                            trust_unidentified=trust_unidentified)
    options["schemas"] = PARTS
    stack = contextlib.ExitStack()
    try:
        saver = stack.enter_context(open_saver(StewardSaver, db, pool_size, options))
    except BaseException:
        stack.close()
        raise
    return Runtime(db.masked, saver, is_async=False, stack=stack, guards=guards)


class _AsyncOpen:
    """What ``aopen`` returns: awaitable, and an async context manager."""

    def __init__(self, url: str, kwargs: dict[str, Any], guards: _Guards) -> None:
        self._url = url
        self._kwargs = kwargs
        self._guards = guards
        self._runtime: Runtime | None = None

    async def _open(self) -> Runtime:
        kwargs = dict(self._kwargs)
        pool_size = kwargs.pop("pool_size")
        db = parse_url(self._url)
        options = {**saver_options(**kwargs), "schemas": PARTS}
        stack = contextlib.AsyncExitStack()
        try:
            saver = await stack.enter_async_context(
                aopen_saver(StewardSaver, db, pool_size, options))
        except BaseException:
            await stack.aclose()
            raise
        return Runtime(db.masked, saver, is_async=True, stack=stack, guards=self._guards)

    def __await__(self) -> Generator[Any, None, Runtime]:
        return self._open().__await__()

    async def __aenter__(self) -> Runtime:
        self._runtime = await self._open()
        return self._runtime

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._runtime is not None:
            await self._runtime.aclose()


def aopen(
    url: str,
    *,
    encryption_key: str | bytes | None = None,
    thread_roles: Mapping[str, str] | None = None,
    default_ttl: float | None = None,
    lease_ttl: float = 30.0,
    pool_size: int = 10,
    policy: Policy | list[Policy] | None = None,
    redactor: Redactor | None = None,
    approval_expires_in: float | None = None,
    verify_on_resume: bool = True,
    prices: Mapping[str, tuple[float, float]] | None = None,
    trust_unidentified: bool = False,
    memory: MemoryRules | None = None,
) -> _AsyncOpen:
    """The async twin of :func:`open`: ``async with steward.aopen(url) as rt:``."""
    return _AsyncOpen(url, {"encryption_key": encryption_key, "thread_roles": thread_roles,
                            "default_ttl": default_ttl, "lease_ttl": lease_ttl,
                            "pool_size": pool_size, "trust_unidentified": trust_unidentified},
                      _Guards(policy, redactor, approval_expires_in, verify_on_resume, prices,
                              memory))
