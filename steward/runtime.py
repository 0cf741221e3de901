"""One database URL in, everything a stateful graph needs out.

``steward.open(url)`` gives a :class:`Runtime`: Steward's checkpointer and a LangGraph store on
the same database, with the parts around them (guardrails, approvals, the audit log), and the
configs that carry a principal, the run's lease and the runtime itself into a run.
``steward.aopen(url)`` is the async twin (use it with ``ainvoke``/``astream``).

The runtime composes the parts, each built with its collaborators, lowest first: the thread
table, the audit log, the guardrail records, the saver (the audit log joins its writes, the
guardrails screen them), approvals and the store.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Generator, Mapping, Sequence
from types import TracebackType
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph._internal._constants import CONFIG_KEY_DURABILITY
from langgraph.types import Command, Durability
from typing_extensions import Unpack

from steward.audit.handler import AuditCallbackHandler
from steward.audit.log import AuditLog
from steward.audit.refusals import RefusalsAudited
from steward.audit.schema import SCHEMA as AUDIT_SCHEMA
from steward.checkpointers.configs import subjects_of
from steward.checkpointers.connect import aopen_driver, open_driver
from steward.checkpointers.lease import AsyncLeaseHandler, LeaseHandler
from steward.checkpointers.saver import StewardSaver
from steward.checkpointers.schema import SCHEMA as SAVER_SCHEMA
from steward.checkpointers.threads import Threads
from steward.context import RUNTIME_KEY
from steward.errors import ConfigError, StewardError
from steward.guardrails.guard import Guardrails
from steward.guardrails.inbox import Approvals
from steward.guardrails.records import Records
from steward.guardrails.redact import Redactor
from steward.guardrails.resumes import SpentResumes
from steward.guardrails.schema import SCHEMA as GUARDRAILS_SCHEMA
from steward.identity import Principal
from steward.jobs.graphs import Graphs
from steward.jobs.queue import JobQueue, Submitted
from steward.memory.erase import ErasureReceipt, erase_op
from steward.memory.schema import SCHEMA as MEMORY_SCHEMA
from steward.memory.store import MemoryStore
from steward.nodes.schema import SCHEMA as LEDGER_SCHEMA
from steward.options import RuntimeOptions, Settings, settle
from steward.report.period import When
from steward.report.reporter import Reporter
from steward.report.scorecard import Scorecard
from steward.storage.drivers import Driver
from steward.storage.envelope import SCHEMA as KEYS_SCHEMA
from steward.storage.url import parse_url
from steward.storage.values import seconds, seconds_or_none, str_id

__all__ = ["Runtime", "aopen", "open"]

# The tables of the parts a runtime puts beside the saver's, in the order they are set up
# (the saver sets up its own and the data keys' table: steward.storage.envelope).
PARTS = (GUARDRAILS_SCHEMA, LEDGER_SCHEMA, AUDIT_SCHEMA, MEMORY_SCHEMA)
SCHEMAS = (SAVER_SCHEMA, KEYS_SCHEMA, *PARTS)
# How a thread is started with its input, and one waiting on an interrupt answered, in Python
# (check_resumable's defaults; a host passes its own wording).
_START_WITH = "graph.invoke(input, rt.config(thread_id, principal))"
_RESUME_WITH = "graph.invoke(Command(resume=...), rt.config(thread_id, approver))"


class Runtime:
    """A checkpointer and a store on one database, the parts around them, and the configs
    that use them. Built by :func:`open` / :func:`aopen`."""

    def __init__(self, url: str, driver: Driver, settings: Settings, *, is_async: bool,
                 stack: contextlib.ExitStack | contextlib.AsyncExitStack,
                 dsn: str | None = None) -> None:
        self.url = url  # masked
        self.is_async = is_async
        self._stack = stack
        # Submitted runs (steward.jobs): PostgreSQL only, the queue opened on first use.
        self._dsn = dsn
        self._password = settings.password  # asked for each connection, the queue's too
        self._graphs = settings.graphs
        self._jobs: JobQueue | None = None
        self.prices = settings.prices
        self.redactor = settings.redactor or Redactor.default()
        threads = Threads(driver, access=settings.access, default_ttl=settings.default_ttl,
                          lease_ttl=settings.lease_ttl)
        self.audit = AuditLog(driver, threads, self.redactor,
                              verify_on_resume=settings.verify_on_resume)
        # The parts built from here on run their operations through it: a principal of
        # another tenant that the access rule refuses is audited (steward.audit.refusals).
        driver = RefusalsAudited(driver, self.audit)
        records = Records(driver, threads, self.audit)
        self.guardrails = Guardrails.build(records, settings.policies,
                                           settings.approval_expires_in)
        self.checkpointer = StewardSaver(driver, cipher=settings.cipher,
                                         data_keys=settings.data_keys, threads=threads,
                                         participants=(self.audit,),
                                         write_filter=SpentResumes(), schemas=PARTS)
        self.approvals = Approvals(records, driver, self.audit, self.guardrails)
        # Long-term memory, scoped by identity (steward.memory): a LangGraph BaseStore.
        self.store = MemoryStore(self, settings.memory)
        # The scorecard of a tenant's trail (steward.report): reads, never writes.
        self._reporter = Reporter(driver, threads, self.audit)

    def __repr__(self) -> str:
        return f"<steward.Runtime {self.url}>"

    def config(self, thread_id: str, principal: Principal | Mapping[str, Any] | None = None, *,
               ttl: float | None = None, subjects: Sequence[str] = (),
               durability: Durability = "sync", **configurable: Any) -> RunnableConfig:
        """A RunnableConfig for one thread, acting as ``principal``.

        ``ttl`` (seconds) sets when a thread created by this config expires (see ``sweep``);
        ``subjects`` names the people whose personal data the thread will hold (a customer's
        e-mail, say), recorded on the thread when the run starts, so that ``erase`` reaches
        it (a node can add more with ``steward.add_subjects``); other keyword arguments go
        into ``configurable`` unchanged. Plain LangGraph calls (``invoke``, ``stream``,
        ``get_state``, ``update_state``) take the result as it is.

        ``durability`` is the runs' default (``invoke(..., durability=...)`` still decides):
        ``"sync"``, not LangGraph's ``"async"``, because an effect runs once across a crash
        only if the checkpoint that scheduled its task was committed before the task ran
        (else the task is scheduled again under another id: see ``steward.effect``). Under
        ``"async"`` the run's steps are committed without waiting for the disk and flushed
        once, when the run ends (see ``StewardSaver.put``).
        """
        tid = str_id(thread_id, "thread_id")
        who = Principal.parse(principal) if principal is not None else None
        about = subjects_of(subjects)
        if durability not in ("sync", "async", "exit"):
            raise ConfigError(f"durability is 'sync', 'async' or 'exit', got {durability!r}.")
        conf: dict[str, Any] = {**configurable, "thread_id": tid, RUNTIME_KEY: self,
                                CONFIG_KEY_DURABILITY: durability}
        if who is not None:
            conf["principal"] = who
        ttl = seconds_or_none("ttl", ttl)
        if ttl is not None:
            conf["steward"] = {"ttl": ttl}
        handler: LeaseHandler | AsyncLeaseHandler = (
            AsyncLeaseHandler(self.checkpointer, tid, who, ttl, about) if self.is_async
            else LeaseHandler(self.checkpointer, tid, who, ttl, about)
        )
        audit = AuditCallbackHandler(self.audit, tid, who, prices=self.prices)
        return {"configurable": conf, "callbacks": [audit, handler]}

    def _resumable(self, thread_id: str, principal: Principal | Mapping[str, Any],
                   graph: Any) -> RunnableConfig:
        if not hasattr(graph, "invoke") or getattr(graph, "checkpointer", None) is None:
            raise ConfigError("rt.resume(thread_id, principal, graph=...) takes the compiled "
                              "graph the thread runs, with this runtime's checkpointer: "
                              "builder.compile(checkpointer=rt.checkpointer).")
        return self.config(thread_id, principal)

    @staticmethod
    def _at(config: RunnableConfig) -> tuple[str, Principal | None]:
        return config["configurable"]["thread_id"], config["configurable"].get("principal")

    @staticmethod
    def _not_waiting(info: dict[str, Any] | None, thread_id: str, start_with: str,
                     resume_with: str) -> None:
        if info is None:
            raise ConfigError(f"no thread {thread_id!r} to resume (no checkpoint to go on "
                              f"from): check the id, or start it with {start_with}.")
        if info["status"] == "interrupted":
            kinds = sorted({str(w.get("type") or "an interrupt") for w in info["waiting_on"]})
            raise ConfigError(f"thread {thread_id!r} waits on {', '.join(kinds)}: answer it "
                              f"with {resume_with} (rt.approvals.pending shows approvals).")

    @staticmethod
    def _started(latest: Any, thread_id: str, start_with: str) -> None:
        if latest is None:
            raise ConfigError(f"thread {thread_id!r} has no checkpoint: its run died before its "
                              "first step, so there is nothing to continue; run it again with "
                              f"its input ({start_with}).")

    def check_resumable(self, thread_id: str, principal: Principal | Mapping[str, Any], *,
                        start_with: str = _START_WITH, resume_with: str = _RESUME_WITH) -> None:
        """Raise unless ``resume`` could go on with the thread, for hosts that check before
        they run it (the AgentCore entrypoint's null payload): ConfigError if there is no such
        thread, if it waits on an interrupt (answered with ``resume_with``, worded for the
        caller: a ``Command(resume=...)`` by default) or if its run died before its first
        checkpoint (started again with ``start_with``); ThreadAccessDenied if ``principal``
        may not read it."""
        config = self.config(thread_id, principal)
        tid, who = self._at(config)
        self._not_waiting(self.checkpointer.thread_info(tid, who), tid, start_with, resume_with)
        self._started(self.checkpointer.get_tuple(config), tid, start_with)

    async def acheck_resumable(self, thread_id: str, principal: Principal | Mapping[str, Any],
                               *, start_with: str = _START_WITH,
                               resume_with: str = _RESUME_WITH) -> None:
        config = self.config(thread_id, principal)
        tid, who = self._at(config)
        self._not_waiting(await self.checkpointer.athread_info(tid, who), tid, start_with,
                          resume_with)
        self._started(await self.checkpointer.aget_tuple(config), tid, start_with)

    def resume(self, thread_id: str, principal: Principal | Mapping[str, Any], *,
               graph: Any, **invoke: Any) -> Any:
        """Continue a thread from where it stopped, as ``principal``: a run that died mid-way
        (``thread_info(...)["status"] == "stalled"``) goes on from its last checkpoint, its
        finished tasks not run again (LangGraph keeps their writes) and its effects not
        repeated (the ledger); a finished thread returns its values. A thread waiting on an
        interrupt is answered with ``Command(resume=...)`` instead (ConfigError says so);
        ThreadBusy if a live run holds it. Keyword arguments go to ``graph.invoke``
        (``durability=...``); returns what it returns."""
        config = self._resumable(thread_id, principal, graph)
        self.check_resumable(thread_id, principal)
        return graph.invoke(None, config, **invoke)

    async def aresume(self, thread_id: str, principal: Principal | Mapping[str, Any], *,
                      graph: Any, **invoke: Any) -> Any:
        config = self._resumable(thread_id, principal, graph)
        await self.acheck_resumable(thread_id, principal)
        return await graph.ainvoke(None, config, **invoke)

    def _submission(self, graph: str, thread_id: str, input: Any,
                    principal: Principal | Mapping[str, Any]
                    ) -> tuple[str, Principal, dict[str, Any]]:
        """Checks of ``submit`` that touch no database: the graph's name, the principal, the
        payload (``{"input": dict}`` or ``{"resume": value}``, as JSON)."""
        if self._dsn is None:
            raise ConfigError(f"submitting runs needs PostgreSQL (this runtime is on "
                              f"{self.url}): run the graph in this process instead "
                              "(graph.invoke(input, rt.config(thread_id, principal))), or open "
                              "the runtime on postgresql://... and start `steward worker`.")
        Graphs.locate(self._graphs).check(graph)
        tid = str_id(thread_id, "thread_id")
        who = Principal.parse(principal)
        if isinstance(input, Command):
            if input.goto or input.update is not None or input.graph is not None:
                raise ConfigError("a submitted Command may only resume (Command(resume=...)): "
                                  "send goto/update from the application that runs the graph.")
            payload: dict[str, Any] = {"resume": input.resume}
        elif isinstance(input, dict):
            payload = {"input": input}
        else:
            raise ConfigError(f"a submitted run takes a dict input or a Command(resume=...), "
                              f"got {type(input).__name__}.")
        try:
            json.dumps(payload)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"a submitted run's input must be JSON (it waits in the job "
                              f"table): {exc}.") from exc
        return tid, who, payload

    def _queue(self) -> JobQueue:
        if self._jobs is None:
            assert self._dsn is not None
            self._jobs = JobQueue(self._dsn, self._password)
            if isinstance(self._stack, contextlib.AsyncExitStack):
                self._stack.push_async_callback(self._jobs.aclose)
            else:
                self._stack.callback(self._jobs.close)
        return self._jobs

    def submit(self, graph: str, thread_id: str, input: Any,
               principal: Principal | Mapping[str, Any]) -> Submitted:
        """Queue a run for ``steward worker`` instead of running it here: the graph named
        ``graph`` in the ``langgraph.json`` (option ``graphs``), on ``thread_id``, as
        ``principal``, with ``input`` (a dict) or ``Command(resume=...)``. Checked before
        anything is queued: ConfigError (unknown graph, malformed input, not PostgreSQL),
        ThreadAccessDenied (the principal may not write the thread), ApprovalInvalid (a vote
        the approval would refuse). Returns the handle; ``run_status`` tells how it went."""
        tid, who, payload = self._submission(graph, thread_id, input, principal)
        if "resume" in payload:
            self.approvals.check_resume(tid, who, payload["resume"])
        self.checkpointer.check_access(tid, who, "write" if "input" in payload else "read")
        return self._queue().defer(graph, tid, who.to_dict(), payload)

    async def asubmit(self, graph: str, thread_id: str, input: Any,
                      principal: Principal | Mapping[str, Any]) -> Submitted:
        tid, who, payload = self._submission(graph, thread_id, input, principal)
        if "resume" in payload:
            await self.approvals.acheck_resume(tid, who, payload["resume"])
        await self.checkpointer.acheck_access(tid, who,
                                              "write" if "input" in payload else "read")
        return await self._queue().adefer(graph, tid, who.to_dict(), payload)

    def run_status(self, handle: Submitted, principal: Principal | Mapping[str, Any], *,
                   wait: float = 0.0) -> dict[str, Any]:
        """How a submitted run went, as ``principal`` may read it, waiting up to ``wait``
        seconds for its job to end: ``job`` (procrastinate's status: ``todo``, ``doing``,
        ``succeeded``, ``failed``, ...), ``thread`` (the thread's status), ``waiting_on``
        and the thread's latest ``values``."""
        job = self._queue().status(handle.job_id, _wait(wait))
        who = Principal.parse(principal)
        info = self.checkpointer.thread_info(handle.thread_id, who)
        latest = self.checkpointer.get_tuple(
            {"configurable": {"thread_id": handle.thread_id, "principal": who}})
        return _run_status(handle, job, info, latest)

    async def arun_status(self, handle: Submitted, principal: Principal | Mapping[str, Any], *,
                          wait: float = 0.0) -> dict[str, Any]:
        job = await self._queue().astatus(handle.job_id, _wait(wait))
        who = Principal.parse(principal)
        info = await self.checkpointer.athread_info(handle.thread_id, who)
        latest = await self.checkpointer.aget_tuple(
            {"configurable": {"thread_id": handle.thread_id, "principal": who}})
        return _run_status(handle, job, info, latest)

    def report(self, principal: Principal | Mapping[str, Any], *, workflow: str | None = None,
               thread: str | None = None, since: When = None, until: When = None,
               timelines: bool = False) -> Scorecard:
        """The scorecard of the principal's tenant (``steward.report``): completion,
        recovery, governance, audit completeness, efficiency and cost, read from the audit
        trail of its threads started in [``since``, ``until``) (epoch seconds, datetimes, ISO
        8601 text or durations back from now such as ``"7d"``), of one ``workflow`` or one
        ``thread`` if named; ``timelines``: also each thread's timeline (for the HTML page).
        The principal needs a role that ``thread_roles`` grants ``read`` or more
        (ThreadAccessDenied otherwise); a workflow or thread the tenant's trail does not name
        is a ConfigError. Reads only."""
        scope = self._reporter.scope(principal, workflow=workflow, thread=thread, since=since,
                                     until=until)
        return self._reporter.build(scope, timelines=timelines)

    async def areport(self, principal: Principal | Mapping[str, Any], *,
                      workflow: str | None = None, thread: str | None = None,
                      since: When = None, until: When = None,
                      timelines: bool = False) -> Scorecard:
        scope = self._reporter.scope(principal, workflow=workflow, thread=thread, since=since,
                                     until=until)
        return await self._reporter.abuild(scope, timelines=timelines)

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
        self.checkpointer.forget()  # the erased threads' cached rows and lists
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



def _wait(wait: float) -> float:
    return 0.0 if wait == 0 else seconds("wait", wait)


def _run_status(handle: Submitted, job: str, info: dict[str, Any] | None,
                latest: Any) -> dict[str, Any]:
    values = dict(latest.checkpoint.get("channel_values", {})) if latest is not None else {}
    return {"job_id": handle.job_id, "thread_id": handle.thread_id, "graph": handle.graph,
            "job": job, "thread": info["status"] if info else None,
            "waiting_on": info["waiting_on"] if info else [],
            "values": {k: v for k, v in values.items() if not k.startswith("__")}}


def open(url: str, **options: Unpack[RuntimeOptions]) -> Runtime:
    """Open a runtime on ``sqlite:///path``, ``sqlite://:memory:`` or ``postgresql://...``
    (the options: :class:`steward.options.RuntimeOptions`).

    Checks every option before touching the database, then creates or migrates the schema.
    Usable as a context manager."""
    settings = settle(options)
    db = parse_url(url)
    stack = contextlib.ExitStack()
    try:
        driver = stack.enter_context(open_driver(db, settings.pool_size, settings.password))
        runtime = Runtime(db.masked, driver, settings, is_async=False, stack=stack,
                          dsn=db.target if db.backend == "postgres" else None)
        stack.callback(runtime.checkpointer.close)
        runtime.checkpointer.setup()
    except BaseException:
        stack.close()
        raise
    return runtime


class _AsyncOpen:
    """What ``aopen`` returns: awaitable, and an async context manager."""

    def __init__(self, url: str, settings: Settings) -> None:
        self._url = url
        self._settings = settings
        self._runtime: Runtime | None = None

    async def _open(self) -> Runtime:
        db = parse_url(self._url)
        stack = contextlib.AsyncExitStack()
        try:
            driver = await stack.enter_async_context(
                aopen_driver(db, self._settings.pool_size, self._settings.password))
            runtime = Runtime(db.masked, driver, self._settings, is_async=True, stack=stack,
                              dsn=db.target if db.backend == "postgres" else None)
            stack.callback(runtime.checkpointer.close)
            await runtime.checkpointer.asetup()
        except BaseException:
            await stack.aclose()
            raise
        return runtime

    def __await__(self) -> Generator[Any, None, Runtime]:
        return self._open().__await__()

    async def __aenter__(self) -> Runtime:
        self._runtime = await self._open()
        return self._runtime

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._runtime is not None:
            await self._runtime.aclose()


def aopen(url: str, **options: Unpack[RuntimeOptions]) -> _AsyncOpen:
    """The async twin of :func:`open`: ``async with steward.aopen(url) as rt:`` (or
    ``rt = await steward.aopen(url)``)."""
    return _AsyncOpen(url, settle(options))
