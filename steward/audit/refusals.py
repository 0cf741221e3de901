"""Refusals of another tenant's principals, kept in the refused tenant's access chain.

The thread access rule refuses a principal of another tenant inside an operation, whose
transaction then rolls back: the refusal cannot be written there. :class:`RefusalsAudited`
wraps the runtime's driver (every part built after the audit log runs its operations through
it): when an operation fails with such a refusal (``ThreadAccessDenied.foreign``), it writes an
``access_refused`` event into the chain ``access:<tenant>`` of the thread's tenant, in a
transaction of its own, and raises the refusal as it was. An operation that succeeds costs one
``try`` more. The chain belongs to no thread, so no run's lease or chain head is touched, and
any principal of the tenant reads it (``rt.audit.events("access:acme", principal)``); the
event names who was refused (principal and tenant), the thread and what was asked, never a
value of the thread. Recording never hides the refusal: if it fails, it is logged and the
refusal raised all the same.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, TypeVar

from steward.errors import StorageError, ThreadAccessDenied
from steward.identity import Principal

if TYPE_CHECKING:
    from steward.audit.log import AuditLog
    from steward.storage.drivers import Driver
    from steward.storage.ops import Op

__all__ = ["ACCESS_CHAIN", "RefusalsAudited", "access_chain"]

T = TypeVar("T")
ACCESS_CHAIN = "access:"  # + tenant: the chain of refusals of that tenant's threads
_log = logging.getLogger("steward.audit")


def access_chain(tenant: str) -> str:
    """The id of a tenant's access chain."""
    return f"{ACCESS_CHAIN}{tenant}"


class RefusalsAudited:
    """A driver that audits the refusals of other tenants' principals (see the module)."""

    def __init__(self, driver: Driver, audit: AuditLog) -> None:
        self.inner = driver  # the driver it wraps (its pools, for whoever manages them)
        self._audit = audit
        self.dialect = driver.dialect
        self.url = driver.url
        self.optimistic = driver.optimistic

    def _record(self, exc: ThreadAccessDenied) -> str:
        """Gather the ``access_refused`` event; returns the chain to write it to."""
        assert exc.tenant and exc.principal_id and exc.principal_tenant
        chain = access_chain(exc.tenant)
        self._audit.record(chain, "access_refused",
                           {"thread_id": exc.thread_id, "need": exc.need,
                            "tenant": exc.principal_tenant},
                           principal=Principal(id=exc.principal_id, tenant=exc.principal_tenant),
                           redact=False)
        return chain

    def refused(self, exc: ThreadAccessDenied) -> None:
        """Write the refusal of another tenant's principal now, in a transaction of its own
        (three tries: two processes may append to the access chain at once)."""
        chain = self._record(exc)
        for attempt in range(3):
            try:
                self._audit.flush(chain)
                return
            except StorageError:
                if attempt == 2:
                    raise

    async def arefused(self, exc: ThreadAccessDenied) -> None:
        chain = self._record(exc)
        for attempt in range(3):
            try:
                await self._audit.aflush(chain)
                return
            except StorageError:
                if attempt == 2:
                    raise

    def run(self, op: Op[T], *, write: bool, durable: bool = True) -> T:
        try:
            return self.inner.run(op, write=write, durable=durable)
        except ThreadAccessDenied as exc:
            if exc.foreign:
                try:
                    self.refused(exc)
                except Exception:  # the refusal is the answer; a failed record is logged
                    _log.exception("could not audit the refusal of %s", exc.principal_id)
            raise

    async def arun(self, op: Op[T], *, write: bool, durable: bool = True) -> T:
        try:
            return await self.inner.arun(op, write=write, durable=durable)
        except ThreadAccessDenied as exc:
            if exc.foreign:
                try:
                    await self.arefused(exc)
                except Exception:
                    _log.exception("could not audit the refusal of %s", exc.principal_id)
            raise

    def holder(self) -> str:
        return self.inner.holder()

    async def aholder(self) -> str:
        return await self.inner.aholder()

    def close(self) -> None:
        self.inner.close()
