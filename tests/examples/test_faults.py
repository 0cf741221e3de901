"""The fault plans the example systems of record consult (``steward eval``'s faults): seeded,
injected where the systems act, and nothing at all without a plan."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from steward.errors import ConfigError
from steward.examples import faults
from steward.examples.refund import add_order, pay_refund, payments


@pytest.fixture(autouse=True)
def _no_plan() -> None:
    faults.install(None)


def _kinds(plan: faults.FaultPlan, calls: int) -> list[str]:
    """How each call went: ok, error (refused before acting) or timeout (acted, no answer)."""
    out = []
    for _ in range(calls):
        acted = False
        try:
            with plan.call("records.write"):
                acted = True
            out.append("ok")
        except faults.InjectedFault:
            assert not acted
            out.append("error")
        except TimeoutError:
            assert acted
            out.append("timeout")
    return out


def test_the_same_seed_draws_the_same_faults_at_the_rate() -> None:
    first = _kinds(faults.FaultPlan("s", rate=0.3, hang=False), 400)
    assert first == _kinds(faults.FaultPlan("s", rate=0.3, hang=False), 400)
    assert first != _kinds(faults.FaultPlan("t", rate=0.3, hang=False), 400)
    failed = 400 - first.count("ok")
    assert 80 < failed < 160 and first.count("error") and first.count("timeout")
    assert _kinds(faults.FaultPlan("s", rate=0.3, timeouts=False, hang=False),
                  50).count("timeout") == 0
    assert set(_kinds(faults.FaultPlan("s"), 50)) == {"ok"}


def test_the_refund_provider_consults_the_plan() -> None:
    add_order("700001", "c@example.com", "900.00")
    faults.install(faults.FaultPlan("x", down=["payments"]))
    with pytest.raises(faults.ProviderDown):
        pay_refund.__wrapped__("700001", "10.00", idempotency_key="k1")
    assert payments("700001") == []
    faults.install(faults.FaultPlan("x", rate=1.0, timeouts=False))
    with pytest.raises(faults.InjectedFault):
        pay_refund.__wrapped__("700001", "10.00", idempotency_key="k1")
    faults.install(None)
    pay_refund.__wrapped__("700001", "10.00", idempotency_key="k1")
    assert [a for _, a, _ in payments("700001")] == ["10.00"]


def test_an_outage_refuses_its_system_only() -> None:
    plan = faults.FaultPlan("x", down=["payments"])
    with pytest.raises(faults.ProviderDown), plan.call("payments.refund"):
        pass
    with plan.call("mail.receipt"):  # another system is up
        pass
    assert plan.injected == {"down": 1} and plan.by_op == {"down payments.refund": 1}


def test_a_hung_call_answers_when_the_next_attempt_begins() -> None:
    plan = faults.FaultPlan("x", rate=1.0)
    plan.rng.random = lambda: 0.0  # type: ignore[method-assign]  # every call: a timeout
    answered = threading.Event()

    def hung() -> None:
        with plan.call("access.grant"):
            pass
        answered.set()

    caller = threading.Thread(target=hung)
    caller.start()
    time.sleep(0.1)
    assert not answered.is_set()  # acted, and no answer: the executor's timeout fires
    plan.release()  # what the executor's next attempt does on entering the system
    assert answered.wait(5) and not caller.is_alive()


def test_a_crash_point_kills_the_process() -> None:
    code = ("from steward.examples import faults\n"
            "plan = faults.FaultPlan('x', crash=('after:payments.refund', 2))\n"
            "for n in range(3):\n"
            "    with plan.call('payments.refund'):\n"
            "        print('acted', n, flush=True)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == -9 and done.stdout.split("\n")[:2] == ["acted 0", "acted 1"]


@pytest.mark.parametrize("rate", [2.0, -0.5])
def test_a_rate_outside_0_to_1_is_refused(rate: float) -> None:
    with pytest.raises(ConfigError) as caught:
        faults.FaultPlan("x", rate=rate)
    assert str(caught.value) == (f"a fault plan's rate is the share of calls that fail, "
                                 f"between 0 and 1: got {rate!r}.")
