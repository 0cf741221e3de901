"""``StewardSaver.from_conn_string``: the saver alone, as LangGraph users open the stock ones,
and the same class, on the same storage, as ``steward.open`` builds (issue 13, item 15)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _support import ALICE, BOB, EVE, approval_graph, snapshot
from langgraph.types import Command

import steward
import steward.checkpointers
from steward import ConfigError, ThreadAccessDenied
from steward.checkpointers import StewardSaver

KEY = "cd" * 32


def _config(thread_id: str, principal: Any) -> Any:
    """A plain LangGraph config: no runtime, the principal as a dict (as over HTTP)."""
    return {"configurable": {"thread_id": thread_id, "principal": {
        "id": principal.id, "tenant": principal.tenant, "roles": sorted(principal.roles)}}}


def test_one_saver_class_is_exported() -> None:
    assert steward.checkpointers.__all__ == ["StewardSaver"]
    for gone in ("SqliteSaver", "PostgresSaver"):
        assert not hasattr(steward.checkpointers, gone)
        assert not hasattr(steward, gone)


def test_from_conn_string_is_the_saver_steward_open_builds(db_url: str) -> None:
    with StewardSaver.from_conn_string(db_url, thread_roles={"manager": "write"}) as saver:
        assert type(saver) is StewardSaver
        graph = approval_graph(saver)
        out = graph.invoke({"items": []}, _config("T-1", ALICE))
        assert out["__interrupt__"][0].value["question"] == "ok?"
        # The thread access rule holds without a runtime: the thread is Alice's tenant's.
        before = snapshot(db_url)
        with pytest.raises(ThreadAccessDenied):
            graph.get_state(_config("T-1", EVE))
        assert snapshot(db_url) == before
        out = graph.invoke(Command(resume="yes"), _config("T-1", BOB))  # thread_roles apply
        assert out == {"items": ["first", "last"], "answer": "yes"}
    # The same storage: steward.open reads what the saver wrote, under the same rule.
    with steward.open(db_url) as rt:
        assert type(rt.checkpointer) is StewardSaver
        state = approval_graph(rt.checkpointer).get_state(rt.config("T-1", ALICE))
        assert state.values == {"items": ["first", "last"], "answer": "yes"}
        assert rt.checkpointer.thread_info("T-1", ALICE)["tenant"] == "acme"


def test_the_saver_is_closed_on_exit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/closed.db"
    with StewardSaver.from_conn_string(url) as saver:
        approval_graph(saver).invoke({"items": []}, _config("T-1", ALICE))
    with pytest.raises(steward.StorageError, match="unavailable"):
        saver.get_tuple(_config("T-1", ALICE))


def test_an_encryption_key_seals_what_the_saver_stores(db_url: str) -> None:
    with StewardSaver.from_conn_string(db_url, encryption_key=KEY) as saver:
        approval_graph(saver).invoke({"items": ["secret-98765"]}, _config("T-1", ALICE))
    stored = snapshot(db_url)
    assert stored["steward_checkpoints"] and "secret-98765" not in repr(stored)
    with pytest.raises(ConfigError, match="is encrypted"):
        steward.open(db_url)
    with steward.open(db_url, encryption_key=KEY) as rt:
        values = approval_graph(rt.checkpointer).get_state(rt.config("T-1", ALICE)).values
        assert values["items"] == ["secret-98765", "first"]


def test_bad_options_are_refused_before_any_database_is_touched(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown database URL scheme 'mysql'"):
        with StewardSaver.from_conn_string("mysql://u:hunter2@h/db"):
            pass
    url = f"sqlite:///{tmp_path}/never.db"
    with pytest.raises(ConfigError, match="thread_roles"):
        StewardSaver.from_conn_string(url, thread_roles=["manager"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="lease_ttl"):
        with StewardSaver.from_conn_string(url, lease_ttl=0):
            pass
    assert not (tmp_path / "never.db").exists() or snapshot(url) == {}


async def test_afrom_conn_string_is_the_async_twin(db_url: str) -> None:
    async with StewardSaver.afrom_conn_string(db_url, pool_size=2) as saver:
        assert type(saver) is StewardSaver
        graph = approval_graph(saver)
        await graph.ainvoke({"items": []}, _config("T-1", ALICE))
        out = await graph.ainvoke(Command(resume="fine"), _config("T-1", ALICE))
        assert out == {"items": ["first", "last"], "answer": "fine"}
        with pytest.raises(ThreadAccessDenied):
            await graph.aget_state(_config("T-1", EVE))
    async with steward.aopen(db_url) as rt:
        state = await approval_graph(rt.checkpointer).aget_state(rt.config("T-1", ALICE))
        assert state.values["answer"] == "fine"
