"""A run the LangGraph server loses in a crash, on each backend: the real ``langgraph dev`` is
SIGKILLed by the refund demo right after it paid; restarted on the same database, Steward's
route says the thread is ``stalled``, a run with no input finishes it, and the refund was
paid once."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from _langgraph_server import LANGGRAPH, Server, repo_config, token
from conftest import BACKENDS
from langgraph_sdk import get_client

ALICE = token("alice", "acme", ["support"])
MALLORY = token("mallory", "globex", ["manager"])


def _info(server: Server, thread_id: str, tok: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    request = urllib.request.Request(f"{server.url}/steward/threads/{thread_id}",
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:  # the refusal's response holds the socket
            return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_run_lost_in_a_server_crash_reads_stalled_and_is_finished_once(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if not LANGGRAPH.exists():
        pytest.fail("langgraph-cli is not installed: pip install 'langgraph-steward[server]'")
    repo_config(tmp_path)
    records = tmp_path / "payments.db"  # the demo's payment provider
    db = (f"sqlite:///{tmp_path}/steward.db" if backend == "sqlite"
          else request.getfixturevalue("pg_url"))
    crashing = Server(tmp_path, db, {"STEWARD_DEMO_CRASH": "after-refund",
                                     "STEWARD_DEMO_LEDGER": str(records)})
    crashing.start()
    try:
        async with get_client(url=crashing.url,
                              headers={"Authorization": f"Bearer {ALICE}"}) as alice:
            thread = await alice.threads.create()
            tid = thread["thread_id"]
            await alice.runs.create(tid, "refund", durability="sync",  # effects once
                                    input={"order_id": "98765", "amount": "20.00"})
        assert crashing.proc is not None
        crashing.proc.wait(timeout=60)  # the demo's crash: SIGKILL right after paying
        assert crashing.proc.returncode == -9, crashing.log.read_text()[-2000:]
    finally:
        crashing.stop()
    server = Server(tmp_path, db, {"STEWARD_DEMO_LEDGER": str(records)})
    server.start()
    try:
        status, info = _info(server, tid, ALICE)
        assert status == 200 and info["status"] == "stalled", info
        assert _info(server, tid, MALLORY)[0] == 404  # another tenant learns nothing
        assert _info(server, tid, None)[0] == 401
        async with get_client(url=server.url,
                              headers={"Authorization": f"Bearer {ALICE}"}) as alice:
            if not any(t["thread_id"] == tid for t in await alice.threads.search()):
                # The in-memory server may lose its own record of the thread in the crash;
                # Steward's checkpoints hold the thread's state.
                await alice.threads.create(thread_id=tid, if_exists="do_nothing")
            run = await alice.runs.create(tid, "refund", input=None,  # go on from the crash
                                          durability="sync")
            await alice.runs.join(tid, run["run_id"])
            state = await alice.threads.get_state(tid)
        assert state["values"]["status"] == "refunded", state["values"]
        assert state["values"]["receipt"].startswith("TXN-")
        deadline = time.monotonic() + 10
        while (info := _info(server, tid, ALICE)[1])["status"] != "idle":
            assert time.monotonic() < deadline, info
            await asyncio.sleep(0.1)
        with sqlite3.connect(records) as conn:
            paid = conn.execute("SELECT count(*) FROM refunds WHERE order_id = '98765'"
                                ).fetchone()[0]
        assert paid == 1  # the effect ledger kept the payment from going out twice
    finally:
        server.stop()
        shutil.rmtree(tmp_path / ".langgraph_api", ignore_errors=True)
