"""A real audit trail for the report's tests: the example workflows run on one database, with
the faults and refusals a scorecard counts.

Tenant ``acme`` (thread ids as the keys of ``THREADS``):

- ``R-approved``: a $120 refund waits for a manager; Alice's own approval is refused (four
  eyes); Eve of tenant ``globex`` tries to resume it and to read its trail (both refused);
  Bob approves, with a comment holding markup; refunded;
- ``R-rejected``: $300 on order 55555 waits; Bob rejects: the guard raises PolicyDenied;
- ``R-small``: $10 on order 12345, no approval needed; refunded;
- ``R-unknown``: order 00000 does not exist: the run ends with the outcome ``rejected``;
- ``R-crash``: ``steward run`` in another process, SIGKILLed right after the refund went out
  (``STEWARD_DEMO_CRASH``), then ``rt.resume``d: refunded, the payment not repeated;
- ``R-error``: the payments database is unreachable, the run raises OperationalError; once it
  is back, the thread is run on from its checkpoint and refunded;
- ``A-admin``: admin rights wait for security; Sam approves; done;
- ``A-model``: planned by a chat model (the local stub of OpenAI's API: 10 tokens in, 5 out,
  priced at (0.15, 0.6) per 1,000): done;
- ``A-waiting``: admin rights for Omar, still waiting for security.

Tenant ``globex``: ``G-1``, a refund of Eve's own (not to be counted for acme).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _model_stub import serve
from _support import ALICE, BOB, CAROL, EVE
from langgraph.types import Command

import steward
from steward.examples import WORKFLOWS
from steward.examples.refund import payments

SAM = steward.Principal(id="sam", tenant="acme", roles=frozenset({"security"}))
ROLES = {"manager": "write", "auditor": "read", "admin": "admin"}
PRICES = {"gpt-4o-mini": (0.15, 0.6)}
COMMENT = "<script>alert('x')</script> regular customer"
THREADS = ["R-approved", "R-rejected", "R-small", "R-unknown", "R-crash", "R-error", "A-admin",
           "A-model", "A-waiting"]
__all__ = ["CAROL", "COMMENT", "EVE", "PRICES", "ROLES", "SAM", "THREADS", "build_trail",
           "runtime"]


@contextmanager
def runtime(url: str) -> Iterator[steward.Runtime]:
    with steward.open(url, thread_roles=ROLES, prices=PRICES,
                      policy=[w.policy() for w in WORKFLOWS.values()]) as rt:
        yield rt


def _graph(rt: steward.Runtime, workflow: str, **build: Any) -> Any:
    return WORKFLOWS[workflow].build(**build).compile(checkpointer=rt.checkpointer,
                                                      name=workflow)


def _refund(**given: str) -> dict[str, Any]:
    return WORKFLOWS["refund"].input(given)


def _crash(url: str, env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "steward.cli", "run", "refund", "--as", "acme/alice:support",
         "--thread", "R-crash", "--input", '{"order_id": "24680", "amount": "60.00"}',
         "--db", url],
        env={**os.environ, **env, "PYTHONPATH": os.pathsep.join(sys.path),
             "STEWARD_DEMO_CRASH": "after-refund"},
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == -9, done.stderr  # SIGKILL, right after the refund


def build_trail(url: str, workdir: Path) -> None:
    ledger = str(workdir / "payments.db")
    env = {"STEWARD_DEMO_LEDGER": ledger, "STEWARD_DEMO_RECORDS": str(workdir / "records.db")}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        with runtime(url) as rt:
            refund = _graph(rt, "refund")
            refund.invoke(_refund(order_id="98765", amount="120.00"),
                          rt.config("R-approved", ALICE))
            with pytest.raises(steward.ApprovalInvalid, match="four eyes"):
                refund.invoke(Command(resume={"decision": "approve"}),
                              rt.config("R-approved", ALICE))
            with pytest.raises(steward.ThreadAccessDenied, match="another tenant"):
                refund.invoke(Command(resume={"decision": "approve"}),
                              rt.config("R-approved", EVE))
            with pytest.raises(steward.ThreadAccessDenied, match="another tenant"):
                rt.audit.events("R-approved", EVE)
            done = refund.invoke(Command(resume={"decision": "approve", "comment": COMMENT}),
                                 rt.config("R-approved", BOB))
            assert done["outcome"]["status"] == "refunded"

            refund.invoke(_refund(order_id="55555", amount="300.00"),
                          rt.config("R-rejected", ALICE))
            with pytest.raises(steward.PolicyDenied, match="rejected by bob"):
                refund.invoke(Command(resume={"decision": "reject", "comment": "call first"}),
                              rt.config("R-rejected", BOB))
            assert refund.invoke(_refund(order_id="12345", amount="10.00"),
                                 rt.config("R-small", ALICE))["outcome"]["status"] == "refunded"
            assert refund.invoke(_refund(order_id="00000", amount="10.00"),
                                 rt.config("R-unknown", ALICE))["outcome"]["status"] == "rejected"

        _crash(url, env)
        with runtime(url) as rt:
            refund = _graph(rt, "refund")
            assert rt.checkpointer.thread_info("R-crash", ALICE)["status"] == "stalled"
            done = rt.resume("R-crash", ALICE, graph=refund)
            assert done["outcome"]["status"] == "refunded" and len(payments("24680")) == 1

            mp.setenv("STEWARD_DEMO_LEDGER", str(workdir / "gone" / "payments.db"))
            with pytest.raises(Exception, match="unable to open database file"):
                refund.invoke(_refund(order_id="55555", amount="20.00"),
                              rt.config("R-error", ALICE))
            mp.setenv("STEWARD_DEMO_LEDGER", ledger)  # the payments database is back
            done = refund.invoke(None, rt.config("R-error", ALICE))
            assert done["outcome"]["status"] == "refunded"

            access = _graph(rt, "access")
            ask = WORKFLOWS["access"].input
            access.invoke(ask({"user_id": "omar", "role": "admin", "days": 3}),
                          rt.config("A-admin", ALICE))
            done = access.invoke(Command(resume={"decision": "approve", "comment": "ok"}),
                                 rt.config("A-admin", SAM))
            assert done["outcome"]["status"] == "done"
            plan = {"steps": [
                {"tool": "lookup_user", "args": {"user_id": "dana"}, "reason": "who"},
                {"tool": "grant_access", "args": {"user_id": "dana", "system": "billing",
                                                  "role": "read", "days": 5}, "reason": "asked"}]}
            with serve(plan) as stub:
                mp.setenv("OPENAI_BASE_URL", f"{stub.url}/v1")
                mp.setenv("OPENAI_API_KEY", "sk-test")
                planned = _graph(rt, "access", model="openai:gpt-4o-mini")
                done = planned.invoke(ask({"user_id": "dana", "days": 5}, "access"),
                                      rt.config("A-model", ALICE))
                assert done["outcome"]["status"] == "done", json.dumps(done["outcome"])
            waiting = access.invoke(ask({"user_id": "omar", "role": "admin", "days": 2}),
                                    rt.config("A-waiting", ALICE))
            assert waiting["__interrupt__"]

            # Another tenant's own thread, which acme's scorecard must never count.
            globex = _graph(rt, "refund")
            globex.invoke(_refund(order_id="12345", amount="5.00"), rt.config("G-1", EVE))
