"""Which commits are flushed to disk: every step of a "sync" run; under "async", a run's steps
reach the database's log at once and the disk with the lease's next renewal or the run's end.

Observed on the real databases: on SQLite, which of the driver's two connections ran each
statement (``synchronous=FULL`` flushes at commit, ``NORMAL`` does not); on PostgreSQL, a
trigger records ``synchronous_commit`` as each checkpoint and lease change is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
from _support import ALICE, ROLES, execute
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

import steward

Seen = Callable[[], list[tuple[str, bool]]]  # (what was written, whether it was flushed)


class State(TypedDict, total=False):
    items: Annotated[list[str], operator.add]


def _graph(checkpointer: object, middle: Callable[[State], State] | None = None
           ) -> CompiledStateGraph[State]:
    builder = StateGraph(State)
    builder.add_node("a", lambda s: {"items": ["a"]})
    builder.add_node("b", middle or (lambda s: {"items": ["b"]}))
    builder.add_node("c", lambda s: {"items": ["c"]})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", END)
    return builder.compile(checkpointer=checkpointer)


_PG_TRIGGERS = """
CREATE TABLE seen (id bigserial PRIMARY KEY, what text, sync text);
CREATE FUNCTION seen_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO seen (what, sync) VALUES ('checkpoint', current_setting('synchronous_commit'));
    RETURN NEW; END $$;
CREATE TRIGGER seen_checkpoint AFTER INSERT ON steward_checkpoints
    FOR EACH ROW EXECUTE FUNCTION seen_checkpoint();
CREATE FUNCTION seen_lease() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO seen (what, sync) VALUES (
        CASE WHEN NEW.lease_owner IS NULL AND OLD.lease_owner IS NOT NULL THEN 'release'
             WHEN NEW.lease_owner = OLD.lease_owner
                  AND NEW.lease_expires_at > OLD.lease_expires_at THEN 'renewal'
             ELSE 'lease' END,
        current_setting('synchronous_commit'));
    RETURN NEW; END $$;
CREATE TRIGGER seen_lease AFTER UPDATE ON steward_threads
    FOR EACH ROW EXECUTE FUNCTION seen_lease();
"""


def _what(sql: str) -> str | None:
    """What a statement the saver ran on SQLite writes, of what these tests follow."""
    if sql.startswith("INSERT INTO steward_checkpoints"):
        return "checkpoint"
    if sql.startswith("UPDATE steward_threads SET lease_owner = NULL"):
        return "release"
    if sql.startswith("UPDATE steward_threads SET lease_expires_at"):
        return "renewal"
    return None


@contextlib.contextmanager
def _observing(rt: steward.Runtime, db_url: str) -> Iterator[Seen]:
    """What ``rt`` writes from now on (in order), and whether each write was flushed."""
    if db_url.startswith("sqlite"):
        log: list[tuple[str, bool]] = []
        driver: Any = rt.checkpointer.driver
        driver = getattr(driver, "inner", driver)  # the driver under the audited reads

        def trace(flushed: bool) -> Callable[[str], None]:
            def seen(sql: str) -> None:
                what = _what(sql)
                if what is not None:
                    log.append((what, flushed))
            return seen

        driver.conn.set_trace_callback(trace(True))
        driver.fast.set_trace_callback(trace(False))
        try:
            yield lambda: list(log)
        finally:
            driver.conn.set_trace_callback(None)
            driver.fast.set_trace_callback(None)
        return
    with psycopg.connect(db_url, autocommit=True) as pg:
        pg.execute(_PG_TRIGGERS)

    def seen() -> list[tuple[str, bool]]:
        rows = execute(db_url, "SELECT what, sync FROM seen ORDER BY id")
        return [(what, sync != "off") for what, sync in rows]
    yield seen


@pytest.fixture
def observed(db_url: str) -> Iterator[tuple[steward.Runtime, Seen]]:
    """A runtime, and what its writes were (in order) and whether each was flushed."""
    with steward.open(db_url, thread_roles=ROLES, lease_ttl=30) as rt, \
            _observing(rt, db_url) as seen:
        yield rt, seen


def test_a_sync_run_flushes_every_step(observed: tuple[steward.Runtime, Seen]) -> None:
    rt, seen = observed
    _graph(rt.checkpointer).invoke({"items": []}, rt.config("T", ALICE))
    checkpoints = [flushed for what, flushed in seen() if what == "checkpoint"]
    assert len(checkpoints) == 5 and all(checkpoints), seen()


def test_an_async_run_flushes_its_steps_once_at_its_end(
        observed: tuple[steward.Runtime, Seen]) -> None:
    rt, seen = observed
    out = _graph(rt.checkpointer).invoke({"items": []},
                                         rt.config("T", ALICE, durability="async"))
    assert out["items"] == ["a", "b", "c"]
    written = [(what, flushed) for what, flushed in seen() if what != "lease"]
    # Five checkpoints committed unflushed, then the lease given back with a flush, which
    # takes them all to disk (both databases flush their log in commit order).
    assert written == [("checkpoint", False)] * 5 + [("release", True)], written
    assert rt.checkpointer.threads.flush_due() == set()  # nothing left for the heartbeat
    state = _graph(rt.checkpointer).get_state(rt.config("T", ALICE))
    assert state.values["items"] == ["a", "b", "c"] and not state.next
    assert rt.audit.verify("T") >= 8  # run and node starts and ends, chained


def test_an_async_run_of_an_async_runtime_flushes_once_at_its_end(db_url: str) -> None:
    async def main() -> list[tuple[str, bool]]:
        async with steward.aopen(db_url, thread_roles=ROLES) as rt:
            with _observing(rt, db_url) as seen:
                out = await _graph(rt.checkpointer).ainvoke(
                    {"items": []}, rt.config("T", ALICE, durability="async"))
                assert out["items"] == ["a", "b", "c"]
                return [(w, f) for w, f in seen() if w != "lease"]

    written = asyncio.run(main())
    assert written == [("checkpoint", False)] * 5 + [("release", True)], written


def test_async_given_to_invoke_wins_over_the_configs_sync(
        observed: tuple[steward.Runtime, Seen]) -> None:
    rt, seen = observed
    _graph(rt.checkpointer).invoke({"items": []}, rt.config("T", ALICE), durability="async")
    assert [f for w, f in seen() if w == "checkpoint"] == [False] * 5, seen()


def test_an_async_run_without_the_lease_flushes_every_step(
        observed: tuple[steward.Runtime, Seen]) -> None:
    """Without ``rt.config`` no run holds the lease, and no release would flush its steps."""
    rt, seen = observed
    config: RunnableConfig = {"configurable": {"thread_id": "T"}}
    _graph(rt.checkpointer).invoke({"items": []}, config, durability="async")
    checkpoints = [flushed for what, flushed in seen() if what == "checkpoint"]
    assert len(checkpoints) == 5 and all(checkpoints), seen()
    assert rt.checkpointer.threads.flush_due() == set()


def test_the_heartbeat_flushes_an_async_run_s_steps_mid_run(
        observed: tuple[steward.Runtime, Seen], monkeypatch: pytest.MonkeyPatch) -> None:
    rt, seen = observed
    threads = rt.checkpointer.threads
    committed: list[tuple[str, ...]] = []  # the saver's notes of commits waiting for a flush
    note = threads.unflushed

    def noted(*tids: str) -> None:
        committed.append(tids)
        note(*tids)

    monkeypatch.setattr(threads, "unflushed", noted)

    def middle(state: State) -> State:
        # The three checkpoints before this step (input, start, "a") are written behind the
        # run ("async"): wait until all are committed; no other is written while it runs.
        deadline = time.monotonic() + 10
        while len(committed) < 3:
            assert time.monotonic() < deadline, f"only {len(committed)} checkpoints committed"
            time.sleep(0.005)
        assert threads.renew_leases() == []  # what the heartbeat does, here and now
        assert threads.renew_leases() == []  # nothing new since: not flushed
        return {"items": ["b"]}

    _graph(rt.checkpointer, middle).invoke({"items": []},
                                           rt.config("T", ALICE, durability="async"))
    written = [(w, f) for w, f in seen() if w != "lease"]
    # The flushed renewal takes the three steps before it to disk; the last two steps go with
    # the release.
    assert written == [("checkpoint", False)] * 3 + [("renewal", True), ("renewal", False)] + \
        [("checkpoint", False)] * 2 + [("release", True)], written


def test_a_flush_that_failed_stays_due(db_url: str) -> None:
    rt = steward.open(db_url, lease_ttl=30)
    threads = rt.checkpointer.threads
    threads.leases["T"] = "someone"  # as if a run held it: the renewal has something to do
    threads.unflushed("T")
    rt.close()  # the renewal's commit fails now
    with pytest.raises(steward.StorageError):
        threads.renew_leases()
    assert threads.flush_due() == {"T"}, "a failed flush must leave the steps due"
    assert threads.flush_due() == set()
