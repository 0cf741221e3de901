"""Faults the example systems of record inject when told to: how ``steward eval`` puts the
runtime in a flaky world, with real errors, real timeouts and real process deaths.

Every tool and effect of the example workflows acts on its system of record inside
``faults.call(op)`` (``op`` names the system and the operation: ``"payments.refund"``,
``"access.grant"``, ``"library.search"``, ...). With no plan installed -- always, outside
``steward eval`` -- that does nothing. With a :class:`FaultPlan` installed (:func:`install`),
each call may meet, drawn from the plan's seeded ``random.Random`` at the chosen ``rate``:

- an **error**: before acting, the system refuses (:class:`InjectedFault`, a ``Transient``
  error: the tool executor and the refund's retry policy try again);
- a **timeout**: the system acts, then does not answer in time. Under the tool executor's
  timeout (``hang=True``) the call blocks until the executor gave up and its next attempt
  begins (which releases it: the late answer arrives, and the retry, under the same
  idempotency key, finds the work done); where the caller has no timeout of its own
  (``hang=False``: the refund's effects) it raises ``TimeoutError`` once it acted: the answer
  was lost after the system acted;
- an **outage**: every call of a system named in ``down`` is refused before acting
  (:class:`ProviderDown`, a ``ConnectionError``), for as long as the plan says so.

A plan also knows where to **crash**: ``crash=("after:payments.refund", 1)`` kills the process
(SIGKILL, nothing flushed, nothing cleaned up) the first time it passes that point; points are
``before:<op>``, ``after:<op>`` (the write committed, its result not yet recorded by the
caller) and ``node:<name>`` (a node starting, reported by :meth:`FaultPlan.point`).

The same seed draws the same faults in the same order: a plan's counters (``injected``) say
what it did.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
from collections import Counter
from collections.abc import Iterable, Iterator

from steward.errors import ConfigError
from steward.nodes.tools import Transient

__all__ = ["FaultPlan", "InjectedFault", "ProviderDown", "call", "current", "install"]

HANG_LIMIT = 60.0  # seconds a hung call waits at most to be released


class InjectedFault(Transient):
    """A transient failure a fault plan injected: the system refused this once."""


class ProviderDown(ConnectionError):
    """The system is down (a fault plan's outage): every call is refused until it is back."""


class FaultPlan:
    """What to inject (see the module): ``rate`` of calls failing, half as errors and half as
    timeouts (``timeouts=False``: errors only); ``down``: systems refusing every call;
    ``crash``: (point, occurrence) at which the process kills itself; ``seed``: anything
    ``random.Random`` takes (text is stable across processes)."""

    def __init__(self, seed: int | str = 0, *, rate: float = 0.0, timeouts: bool = True,
                 hang: bool = True, down: Iterable[str] = (),
                 crash: tuple[str, int] | None = None) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(f"a fault plan's rate is the share of calls that fail, between 0 "
                              f"and 1: got {rate!r}.")
        self.rng = random.Random(seed)
        self.rate = rate
        self.timeouts = timeouts
        self.hang = hang
        self.down = frozenset(down)
        self.crash = crash
        self.injected: Counter[str] = Counter()  # "error", "timeout", "down" -> how many
        self.by_op: Counter[str] = Counter()  # "<kind> <op>" -> how many
        self._passed: Counter[str] = Counter()
        self._hung: list[tuple[threading.Event, threading.Thread]] = []
        self._lock = threading.Lock()

    def point(self, name: str) -> None:
        """Passing a crash point: the process dies here if the plan says so."""
        with self._lock:
            self._passed[name] += 1
            due = self.crash is not None and self.crash == (name, self._passed[name])
        if due:
            os.kill(os.getpid(), signal.SIGKILL)

    def release(self) -> None:
        """Let every hung call answer, and wait until each has (its late callbacks included):
        the tool executor's next attempt does this, and ``steward eval`` after each run."""
        with self._lock:
            hung, self._hung = self._hung, []
        for event, _ in hung:
            event.set()
        for _, thread in hung:
            if thread is not threading.current_thread():
                thread.join(HANG_LIMIT)

    def _draw(self, op: str) -> str | None:
        system = op.partition(".")[0]
        with self._lock:
            if system in self.down:
                kind: str | None = "down"
            elif self.rate and self.rng.random() < self.rate:
                kind = "timeout" if self.timeouts and self.rng.random() < 0.5 else "error"
            else:
                kind = None
            if kind is not None:
                self.injected[kind] += 1
                self.by_op[f"{kind} {op}"] += 1
        return kind

    def _hang(self) -> None:
        event = threading.Event()
        with self._lock:
            self._hung.append((event, threading.current_thread()))
        event.wait(HANG_LIMIT)

    @contextlib.contextmanager
    def call(self, op: str) -> Iterator[None]:
        self.release()  # a hung earlier attempt answers before this one starts
        self.point(f"before:{op}")
        kind = self._draw(op)
        if kind == "down":
            raise ProviderDown(f"{op}: the service is unavailable (an injected outage)")
        if kind == "error":
            raise InjectedFault(f"{op}: the service refused the call (an injected transient "
                                "error); try again")
        yield
        self.point(f"after:{op}")
        if kind == "timeout":
            if not self.hang:
                raise TimeoutError(f"{op}: no answer in time (an injected timeout, after the "
                                   "service acted)")
            self._hang()


_PLAN: FaultPlan | None = None


def install(plan: FaultPlan | None) -> FaultPlan | None:
    """Make ``plan`` the process's fault plan (None: no faults); returns the previous one."""
    global _PLAN
    previous, _PLAN = _PLAN, plan
    return previous


def current() -> FaultPlan | None:
    return _PLAN


@contextlib.contextmanager
def call(op: str) -> Iterator[None]:
    """A call of a system of record: faults are injected here when a plan is installed."""
    plan = _PLAN
    if plan is None:
        yield
        return
    with plan.call(op):
        yield
