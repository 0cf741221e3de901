"""Single writer per thread: a lease taken when a run starts and given back when it ends.

``rt.config(...)`` attaches a :class:`LeaseHandler` (or its async twin) to the run's callbacks.
When the root run starts, the handler takes the thread's lease in the database, or raises
``ThreadBusy`` before any node runs; when the run ends, fails or is interrupted, it releases
it. While the run lasts, the saver's heartbeat renews the lease; a killed process stops renewing
and its lease expires after ``lease_ttl`` seconds. The saver fences every write against the
lease, so a run that lost its lease cannot overwrite the run that took it over.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langgraph.types import Command

from steward.identity import Vote

if TYPE_CHECKING:
    from steward.checkpointers.saver import StewardSaver
    from steward.identity import Principal


class _QuietLeaseErrors(logging.Filter):
    """LangChain logs a warning for every error a callback raises, then raises it anyway;
    for the lease handlers that error (ThreadBusy, ThreadAccessDenied) is the run's own,
    already clear, result, so the duplicate warning is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "LeaseHandler." not in record.getMessage()


logging.getLogger("langchain_core.callbacks.manager").addFilter(_QuietLeaseErrors())


class _Lease:
    """What both handlers know: whose thread, acting as whom."""

    raise_error = True  # ThreadBusy must stop the run, not be logged and ignored

    def __init__(self, saver: StewardSaver, thread_id: str, principal: Principal | None,
                 ttl: float | None = None, subjects: Sequence[str] = ()) -> None:
        self.saver = saver
        self.thread_id = thread_id
        self.principal = principal
        self.ttl = ttl  # the thread's time to live, should this run create it
        self.subjects = subjects  # recorded on the thread with the lease (erasure finds them)


def _vote(inputs: Any) -> Vote | None:
    """What a run does to its thread, from its input: answers an interrupt (a resume alone),
    goes on from where it stopped (no input), or anything else (None)."""
    if inputs is None:
        return "run"
    if isinstance(inputs, Command) and inputs.resume is not None and inputs.update is None \
            and not inputs.goto and inputs.graph is None:
        return "resume"
    return None


class LeaseHandler(_Lease, BaseCallbackHandler):
    """Holds the thread's lease for the duration of a synchronous root run."""

    def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID,
                       parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        if parent_run_id is None:
            self.saver.acquire_lease(self.thread_id, str(run_id), self.principal, self.ttl,
                                     self.subjects, _vote(inputs))

    def on_chain_end(self, outputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                     **kwargs: Any) -> None:
        if parent_run_id is None:
            self.saver.release_lease(self.thread_id, str(run_id))

    def on_chain_error(self, error: BaseException, *, run_id: UUID,
                       parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        if parent_run_id is None:
            self.saver.release_lease(self.thread_id, str(run_id))


class AsyncLeaseHandler(_Lease, AsyncCallbackHandler):
    """The async twin, for runtimes opened with ``steward.aopen``."""

    async def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, *,
                             run_id: UUID, parent_run_id: UUID | None = None,
                             **kwargs: Any) -> None:
        if parent_run_id is None:
            await self.saver.aacquire_lease(self.thread_id, str(run_id), self.principal,
                                              self.ttl, self.subjects, _vote(inputs))

    async def on_chain_end(self, outputs: Any, *, run_id: UUID,
                           parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        if parent_run_id is None:
            await self.saver.arelease_lease(self.thread_id, str(run_id))

    async def on_chain_error(self, error: BaseException, *, run_id: UUID,
                             parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        if parent_run_id is None:
            await self.saver.arelease_lease(self.thread_id, str(run_id))
