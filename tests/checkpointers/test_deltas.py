"""Growing lists stored as deltas: exact on reading, small on disk, safe under forks and GC."""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from _support import ALICE, execute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

import steward
from steward.checkpointers.deltas import MAX_DEPTH


class Chat(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    log: Annotated[list[str], operator.add]


def _reply(state: Chat) -> Chat:
    last = state["messages"][-1] if state["messages"] else None
    text = f"re: {last.content}" if last is not None else "hello"
    return {"messages": [AIMessage(content=text, id=f"ai-{len(state['messages'])}")],
            "log": [text[:12]]}


def chat_graph(checkpointer: Any) -> Any:
    builder = StateGraph(Chat)
    builder.add_node("reply", _reply)
    builder.add_edge(START, "reply")
    builder.add_edge("reply", END)
    return builder.compile(checkpointer=checkpointer)


def _ask(graph: Any, config: dict[str, Any], turns: int) -> None:
    for turn in range(turns):
        graph.invoke({"messages": [HumanMessage(content=f"q{turn}", id=f"h-{turn}")]}, config)


def _blob_rows(url: str, channel: str) -> list[tuple[Any, ...]]:
    return execute(url, "SELECT version, base_version, keep, depth, length(blob) "
                   "FROM steward_blobs WHERE channel = ? ORDER BY version", (channel,))


def test_a_long_chat_stores_deltas_and_reads_back_exactly(db_url: str) -> None:
    turns = 80
    with steward.open(db_url) as rt:
        graph = chat_graph(rt.checkpointer)
        cfg = rt.config("chat", ALICE)
        for turn in range(turns):
            graph.invoke({"messages": [HumanMessage(content=f"q{turn} " + "x" * 400,
                                                    id=f"h-{turn}")]}, cfg)
        values = graph.get_state(cfg).values
    assert len(values["messages"]) == 2 * turns
    assert [m.id for m in values["messages"]][:4] == ["h-0", "ai-1", "h-1", "ai-3"]
    rows = _blob_rows(db_url, "messages")
    deltas = [r for r in rows if r[1] is not None]
    fulls = [r for r in rows if r[1] is None]
    assert len(deltas) > 0.8 * len(rows)
    assert max(r[3] for r in rows) <= MAX_DEPTH
    # bytes per stored version stay proportional to what the turn added, not to the history
    assert max(r[4] for r in deltas) < 4_000
    assert sum(r[4] for r in rows) < 12 * sum(r[4] for r in fulls[:1]) + 2_000 * len(rows)
    # a fresh process (cold cache) reads the same values
    with steward.open(db_url) as again:
        assert chat_graph(again.checkpointer).get_state(again.config("chat", ALICE)).values == \
            values


def test_removals_and_replacements_come_back_exactly(db_url: str) -> None:
    with steward.open(db_url) as rt:
        graph = chat_graph(rt.checkpointer)
        cfg = rt.config("edit", ALICE)
        _ask(graph, cfg, 6)
        graph.update_state(cfg, {"messages": [RemoveMessage(id="h-2")]})
        graph.update_state(cfg, {"messages": [HumanMessage(content="edited", id="h-4")]})
        graph.invoke({"messages": [HumanMessage(content="last", id="h-9")]}, cfg)
        expected = graph.get_state(cfg).values
        assert "h-2" not in [m.id for m in expected["messages"]]
        assert [m.content for m in expected["messages"] if m.id == "h-4"] == ["edited"]
        history = [s.values for s in graph.get_state_history(cfg)]
    with steward.open(db_url) as again:
        graph = chat_graph(again.checkpointer)
        assert graph.get_state(again.config("edit", ALICE)).values == expected
        assert [s.values for s in graph.get_state_history(again.config("edit", ALICE))] == \
            history


def test_a_pruned_base_makes_the_writer_store_the_value_whole(db_url: str) -> None:
    a, b, c = (HumanMessage(content=x * 50, id=x) for x in "abc")
    with steward.open(db_url) as rt:
        saver = rt.checkpointer
        parent: str | None = None

        def put(messages: list[Any], version: str) -> str:
            nonlocal parent
            checkpoint = empty_checkpoint()
            checkpoint["channel_values"] = {"messages": messages}
            checkpoint["channel_versions"] = {"messages": version}
            configurable = {"thread_id": "gc", "checkpoint_ns": "", "principal": ALICE}
            if parent:
                configurable["checkpoint_id"] = parent
            saver.put({"configurable": configurable}, checkpoint,
                      {"source": "loop", "step": 1, "parents": {}}, {"messages": version})
            parent = checkpoint["id"]
            return parent

        put([a], "1")
        put([a, b], "2")
        assert [r[1] for r in _blob_rows(db_url, "messages")] == [None, "1"]  # a delta on 1
        # Another process prunes version 2, which this process would build on next ...
        execute(db_url, "DELETE FROM steward_blobs WHERE channel = 'messages' AND version = '2'")
        last = put([a, b, c], "3")
        rows = {r[0]: r for r in _blob_rows(db_url, "messages")}
        assert rows["3"][1] is None  # ... so version 3 was stored whole, not on a missing base
        tup = saver.get_tuple({"configurable": {"thread_id": "gc", "checkpoint_ns": "",
                                                "checkpoint_id": last, "principal": ALICE}})
        assert tup is not None and tup.checkpoint["channel_values"]["messages"] == [a, b, c]


# -- an oracle: every checkpoint of a random history equals LangGraph's in-memory saver's ------

Op = tuple[str, int]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("say"), st.integers(0, 3)),
        st.tuples(st.just("remove"), st.integers(0, 30)),
        st.tuples(st.just("replace"), st.integers(0, 30)),
        st.tuples(st.just("fork"), st.integers(1, 6)),
    ),
    min_size=1, max_size=15,
)


def _play(graph: Any, config: dict[str, Any], script: list[Op]) -> list[dict[str, Any]]:
    counter = 0
    for kind, n in script:
        counter += 1
        state = graph.get_state(config)
        messages = state.values.get("messages", [])
        if kind == "say":
            graph.invoke({"messages": [HumanMessage(content=f"m{counter}" * (n + 1),
                                                    id=f"u{counter}")]}, config)
        elif kind in ("remove", "replace") and messages:
            victim = messages[n % len(messages)]
            update = (RemoveMessage(id=victim.id) if kind == "remove"
                      else HumanMessage(content=f"edit{counter}", id=victim.id))
            graph.update_state(config, {"messages": [update]})
        elif kind == "fork":
            past = list(graph.get_state_history(config))
            if len(past) > n:  # (the past config plus whoever acts, as a client would)
                fork = {"configurable": {**config["configurable"],
                                         **past[n].config["configurable"]}}
                graph.update_state(fork, {"log": [f"fork{counter}"]})
    return _history(graph, config)


def _history(graph: Any, config: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"values": s.values, "next": s.next} for s in graph.get_state_history(config)]


def _check_oracle(url: str, script: list[Op]) -> None:
    """The script's whole history on Steward equals the in-memory saver's, as written and as
    read back by a fresh process (cold caches) from the database alone."""
    expected = _play(chat_graph(InMemorySaver()), {"configurable": {"thread_id": "t"}}, script)
    with steward.open(url) as rt:
        assert _play(chat_graph(rt.checkpointer), rt.config("t", ALICE), script) == expected
    with steward.open(url) as cold:
        assert _history(chat_graph(cold.checkpointer), cold.config("t", ALICE)) == expected


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=ops)
def test_random_histories_match_langgraphs_in_memory_saver(tmp_path: Path,
                                                           script: list[Op]) -> None:
    _check_oracle(f"sqlite:///{tmp_path}/oracle-{abs(hash(tuple(script)))}.db", script)


@pytest.mark.postgres
def test_oracle_on_postgres(pg_url: str) -> None:
    script: list[Op] = [("say", 1), ("say", 2), ("replace", 0), ("say", 0), ("fork", 2),
                        ("say", 3), ("remove", 1), ("say", 1), ("fork", 4), ("say", 0)]
    _check_oracle(pg_url, script)


def test_prune_and_delete_for_runs_keep_every_base_a_survivor_needs(db_url: str) -> None:
    with steward.open(db_url) as rt:
        graph = chat_graph(rt.checkpointer)
        cfg = rt.config("p", ALICE)
        _ask(graph, cfg, 10)
        values = graph.get_state(cfg).values
        runs = sorted({t.metadata["run_id"] for t in rt.checkpointer.list(cfg)})
        rt.checkpointer.delete_for_runs(runs[:3], principal=ALICE)
        assert graph.get_state(cfg).values == values
        rt.checkpointer.prune(["p"], principal=ALICE)
        assert graph.get_state(cfg).values == values
        assert len(_blob_rows(db_url, "messages")) < 20
    with steward.open(db_url) as cold:
        assert chat_graph(cold.checkpointer).get_state(cold.config("p", ALICE)).values == values


def test_the_next_turn_takes_the_history_this_process_stored_without_decoding_it(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from steward.checkpointers.decoding import Decoder

    rebuilt: list[str] = []
    original = Decoder.rebuild

    def rebuild(self: Decoder, tid: str, ns: str, channel: str, chain: Any, label: str) -> Any:
        rebuilt.append(channel)
        return original(self, tid, ns, channel, chain, label)

    monkeypatch.setattr(Decoder, "rebuild", rebuild)
    with steward.open(db_url) as one, steward.open(db_url) as other:
        graph = chat_graph(one.checkpointer)
        _ask(graph, one.config("chat", ALICE), 5)
        rebuilt.clear()
        graph.invoke({"messages": [HumanMessage(content="q5", id="h-5")]},
                     one.config("chat", ALICE))
        assert "messages" not in rebuilt  # copied from what this process stored
        # Another process moves the thread on: its version is not the one held here.
        other_graph = chat_graph(other.checkpointer)
        other_graph.invoke({"messages": [HumanMessage(content="elsewhere", id="h-x")]},
                           other.config("chat", ALICE))
        rebuilt.clear()
        state = graph.get_state(one.config("chat", ALICE)).values
        assert "messages" in rebuilt
        assert [m.id for m in state["messages"]][-2:] == ["h-x", "ai-13"]
        assert len(state["messages"]) == 14
