"""The planner with real provider clients (langchain-openai, langchain-aws) talking to a local
stub of their wire formats; no request leaves the machine (see conftest's network guard)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from _model_stub import serve
from _support import ALICE
from langchain_core.messages import HumanMessage
from test_agent import REFUNDS, _runtime, lookup_order

import steward
from steward.graphs import build_agent_graph
from steward.nodes.plan import chat_model

PLAN = {"steps": [{"tool": "lookup_order", "args": {"order_id": "98765"}, "reason": "check"},
                  {"tool": "issue_refund", "args": {"order_id": "98765", "amount": "20.00"},
                   "reason": "refund"}]}


def _openai(url: str) -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="gpt-4o-mini", base_url=f"{url}/v1", api_key="sk-test",
                      max_retries=0, timeout=10)


def _bedrock(url: str) -> Any:
    from langchain_aws import ChatBedrockConverse

    return ChatBedrockConverse(model="anthropic.claude-3-haiku-20240307-v1:0",
                               endpoint_url=url, region_name="us-east-1",
                               aws_access_key_id="AKIDTEST", aws_secret_access_key="secret")


def _agent(rt: Any, model: Any) -> Any:
    from test_agent import delete_order, issue_refund

    return build_agent_graph([lookup_order, issue_refund, delete_order], model=model,
                             read_only=["lookup_order"], token_budget=400,
                             ).compile(checkpointer=rt.checkpointer)


@pytest.fixture(autouse=True)
def _clear() -> None:
    REFUNDS.clear()


@pytest.mark.parametrize("provider", ["openai", "bedrock"])
def test_a_real_client_plans_through_the_stub(db_url: str, provider: str) -> None:
    with serve(PLAN) as stub, _runtime(db_url) as rt:
        model = _openai(stub.url) if provider == "openai" else _bedrock(stub.url)
        graph = _agent(rt, model)
        history = [HumanMessage("old " + "y" * 400) for _ in range(30)]
        out = graph.invoke({"messages": [*history, HumanMessage("refund order 98765")]},
                           rt.config("T", ALICE))
        assert out["outcome"]["status"] == "done"
        assert [s["tool"] for s in out["plan"]] == ["lookup_order", "issue_refund"]
        assert REFUNDS[0]["amount"] == "20.00"
        [(path, body)] = stub.requests
        text = str(body)
        assert "delete_order" not in text  # the denied tool is never offered to the model
        assert "refund order 98765" in text and text.count("old y") <= 3  # trimmed history
        assert path.endswith("/chat/completions" if provider == "openai" else "/converse")


@pytest.mark.parametrize("provider", ["openai", "bedrock"])
def test_an_invalid_plan_from_a_real_client_fails_cleanly(db_url: str, provider: str) -> None:
    bad = {"steps": [{"tool": "issue_refund", "args": {"order_id": 5}}]}  # missing amount
    with serve(bad) as stub, _runtime(db_url) as rt:
        model = _openai(stub.url) if provider == "openai" else _bedrock(stub.url)
        out = _agent(rt, model).invoke({"goal": "refund 98765"}, rt.config("T", ALICE))
    assert out["outcome"]["status"] == "failed"
    assert [e["type"] for e in out["errors"]] == ["invalid_args"] and REFUNDS == []


def test_model_specs_and_their_extras() -> None:
    assert type(chat_model("openai:gpt-4o-mini", api_key="sk-test")).__name__ == "ChatOpenAI"
    with pytest.raises(steward.ConfigError, match="unknown model"):
        chat_model("mistral:large")
    with pytest.raises(steward.ConfigError, match="unknown model"):
        chat_model("openai:")


def test_the_network_is_out_of_reach() -> None:
    with pytest.raises(ConnectionRefusedError, match="may not reach the network"):
        socket.create_connection(("203.0.113.1", 443), timeout=1)
