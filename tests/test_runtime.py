"""steward.open / aopen: URLs, bad input, the store, retention and closing (schema migrations:
storage/test_migrations.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, TypedDict

import pytest
from _pg import PgServer
from _support import ALICE, EVE, State, approval_graph, execute
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

import steward
from steward import ConfigError


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql://root:hunter2@db/x", "unknown database URL scheme 'mysql'"),
        ("sqlite://relative.db", "names no file"),
        ("not a url", "has no scheme"),
        ("", "non-empty string"),
    ],
)
def test_bad_urls_raise_config_error_with_the_password_masked(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        steward.open(url)
    assert "hunter2" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unreachable_postgres_names_the_url_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql://app:hunter2@/steward?host={tmp_path}&port=1"
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        steward.open(url)
    message = str(info.value)
    assert "cannot connect to PostgreSQL" in message and "app:***@" in message
    assert "hunter2" not in message
    assert time.monotonic() - started < 10


@pytest.mark.postgres
def test_missing_postgres_database_is_a_config_error(pg_server: PgServer) -> None:
    url = pg_server.admin_url.replace("/postgres?", "/no_such_db?")
    with pytest.raises(ConfigError, match="no_such_db"):
        steward.open(url)


def test_sqlite_in_a_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="directory exists"):
        steward.open(f"sqlite:///{tmp_path}/nope/steward.db")


def test_memory_database_runs_a_graph_and_a_store() -> None:
    with steward.open("sqlite://:memory:") as rt:
        graph = approval_graph(rt.checkpointer)
        graph.invoke({"items": []}, rt.config("T1", ALICE))
        assert graph.invoke(Command(resume=1), rt.config("T1", ALICE))["answer"] == 1
        mine = rt.store.bind(ALICE)
        mine.put(("acme", "user:alice"), "pref", {"lang": "en"}, purpose="preference")
        item = mine.get(("acme", "user:alice"), "pref")
        assert item is not None and item.value == {"lang": "en"}


def test_store_lives_in_the_same_database(db_url: str) -> None:
    with steward.open(db_url) as rt:
        rt.store.bind(ALICE).put(("acme", "user:alice"), "k", {"v": 1}, purpose="preference")
    with steward.open(db_url) as rt:
        item = rt.store.bind(ALICE).get(("acme", "user:alice"), "k")
        assert item is not None and item.value == {"v": 1}


async def test_aopen_is_awaitable_and_an_async_context_manager(db_url: str) -> None:
    rt = await steward.aopen(db_url)
    try:
        graph = approval_graph(rt.checkpointer)
        await graph.ainvoke({"items": []}, rt.config("T1", ALICE))
        await rt.store.bind(ALICE).aput(("acme", "user:alice"), "k", {"v": 2},
                                        purpose="preference")
    finally:
        await rt.aclose()
    async with steward.aopen(db_url) as again:
        state = await approval_graph(again.checkpointer).aget_state(again.config("T1", ALICE))
        assert state.next == ("ask",)
        item = await again.store.bind(ALICE).aget(("acme", "user:alice"), "k")
        assert item is not None and item.value == {"v": 2}


def test_threads_expire_and_sweep_deletes_them(db_url: str) -> None:
    with steward.open(db_url, default_ttl=3600) as rt:
        graph = approval_graph(rt.checkpointer)
        graph.invoke({"items": []}, rt.config("short", ALICE, ttl=1.0))
        graph.invoke({"items": []}, rt.config("default", ALICE))
        graph.invoke({"items": []}, rt.config("other", EVE, ttl=1.0))
        info = rt.checkpointer.thread_info("default", ALICE)
        assert info is not None and 3500 < info["expires_at"] - time.time() <= 3600
        assert rt.sweep() == []  # nothing has expired yet
        time.sleep(1.1)  # (a ttl long enough for three runs on a busy machine)
        rt.checkpointer.acquire_lease("other", "live-run", EVE)  # a live run is not swept
        assert rt.sweep() == ["short"]
        assert graph.get_state(rt.config("short", ALICE)).values == {}
        assert graph.get_state(rt.config("default", ALICE)).next == ("ask",)
        rt.checkpointer.release_lease("other", "live-run")
        assert rt.sweep() == ["other"]
        assert execute(db_url, "SELECT COUNT(*) FROM steward_blobs WHERE thread_id = ?",
                       ("short",)) == [(0,)]


def test_prune_keeps_the_latest_state_and_drops_unreferenced_blobs(db_url: str) -> None:
    with steward.open(db_url) as rt:
        graph = approval_graph(rt.checkpointer)
        graph.invoke({"items": []}, rt.config("T1", ALICE))
        graph.invoke(Command(resume="done"), rt.config("T1", ALICE))
        values = graph.get_state(rt.config("T1", ALICE)).values
        blobs_before = execute(db_url, "SELECT COUNT(*) FROM steward_blobs")[0][0]
        rt.checkpointer.prune(["T1"], principal=ALICE)
        assert graph.get_state(rt.config("T1", ALICE)).values == values
        assert len(list(rt.checkpointer.list(rt.config("T1", ALICE)))) == 1
        assert execute(db_url, "SELECT COUNT(*) FROM steward_blobs")[0][0] < blobs_before
        assert execute(db_url, "SELECT COUNT(*) FROM steward_writes")[0][0] == 0


def test_close_is_enforced_for_async_runtimes(db_url: str) -> None:
    async def scenario() -> None:
        rt = await steward.aopen(db_url)
        with pytest.raises(ConfigError, match="aclose"):
            rt.close()
        await rt.aclose()

    import asyncio

    asyncio.run(scenario())


def test_resume_refuses_what_it_cannot_continue(tmp_path: Path) -> None:
    from langgraph.graph import START, StateGraph
    from langgraph.types import interrupt

    class S(TypedDict, total=False):
        answer: str

    builder = StateGraph(S)
    builder.add_node("ask", lambda s: {"answer": interrupt("ok?")})
    builder.add_edge(START, "ask")
    alice = ALICE
    with steward.open(f"sqlite:///{tmp_path}/r.db") as rt:
        graph = builder.compile(checkpointer=rt.checkpointer)
        with pytest.raises(steward.ConfigError, match="takes the compiled graph"):
            rt.resume("T", alice, graph=builder)  # not compiled
        with pytest.raises(steward.ConfigError, match="no thread 'T' to resume"):
            rt.resume("T", alice, graph=graph)
        graph.invoke({}, rt.config("T", alice))
        with pytest.raises(steward.ConfigError, match="waits on an interrupt: answer it"):
            rt.resume("T", alice, graph=graph)
        # A run that took its lease and died before its first checkpoint left nothing to go on
        # from: said so, and the thread is left as it was.
        rt.checkpointer.acquire_lease("T-none", "a-run", alice)
        before = rt.checkpointer.thread_info("T-none", alice)
        with pytest.raises(steward.ConfigError, match="has no checkpoint: its run died"):
            rt.resume("T-none", alice, graph=graph)
        assert rt.checkpointer.thread_info("T-none", alice) == before
        with pytest.raises(steward.ConfigError, match="unknown access level"):
            rt.checkpointer.check_access("T", alice, "own")
        rt.checkpointer.check_access("T", alice, "admin")  # the owner may
        with pytest.raises(steward.ThreadAccessDenied):
            rt.checkpointer.check_access("T", EVE, "read")


def test_runs_under_rt_config_commit_each_checkpoint_before_its_tasks_run(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An effect's call site is named after its task, whose id comes from the checkpoint that
    scheduled it: that checkpoint must be committed before the task runs, or a crash right
    after the effect could lose it and the effect would act again under another site. A slow
    commit makes the window wide: under rt.config's default ("sync") the second node finds the
    checkpoint that scheduled it; with LangGraph's default ("async") it does not."""
    found: list[Any] = []
    with steward.open(db_url) as rt:
        put = rt.checkpointer.put

        def slow_put(*args: Any, **kwargs: Any) -> Any:
            time.sleep(0.2)
            return put(*args, **kwargs)

        monkeypatch.setattr(rt.checkpointer, "put", slow_put)

        def second(state: State, config: RunnableConfig) -> State:
            where = {"configurable": {"thread_id": config["configurable"]["thread_id"],
                                      "principal": ALICE}}
            latest = rt.checkpointer.get_tuple(where)  # type: ignore[arg-type]
            found.append(latest.metadata["step"] if latest else None)
            return {"items": ["second"]}

        builder = StateGraph(State)
        builder.add_node("first", lambda state: {"items": ["first"]})
        builder.add_node("second", second)
        builder.add_edge(START, "first")
        builder.add_edge("first", "second")
        builder.add_edge("second", END)
        graph = builder.compile(checkpointer=rt.checkpointer)
        graph.invoke({"items": []}, rt.config("T-sync", ALICE))
        graph.invoke({"items": []}, rt.config("T-async", ALICE, durability="async"))
        # Step 1 ("first" done, "second" next) was committed; under "async" it was not yet.
        assert found[0] == 1 and found[1] != 1, found
        with pytest.raises(steward.ConfigError, match="durability is 'sync'"):
            rt.config("T", ALICE, durability="later")  # type: ignore[arg-type]
