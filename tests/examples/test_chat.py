"""The refund chat (steward.examples.chat): a LangChain agent under GuardedToolsMiddleware with
an offline chat model, driven as Agent Chat UI drives it, on both backends (issue #15)."""

from __future__ import annotations

from typing import Any

import pytest
from _support import ALICE, BOB
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.types import Command

import steward
from steward.examples.chat import (
    HELP,
    RefundChatModel,
    asked_refund,
    build_refund_chat_agent,
    chat_policy,
)
from steward.examples.refund import payments


def _said(text: str) -> dict[str, Any]:
    """The input Agent Chat UI sends: a human message of text blocks."""
    return {"messages": [{"type": "human", "content": [{"type": "text", "text": text}]}]}


@pytest.mark.parametrize(("text", "args"), [
    ("Please refund $120 for order 98765", {"order_id": "98765", "amount": "120.00"}),
    ("refund $7.5 on order #42, thanks", {"order_id": "42", "amount": "7.50"}),
    ("Order number 55555: refund $ 600", {"order_id": "55555", "amount": "600.00"}),
    ("Please refund order 98765", None),
    ("refund $20", None),
])
def test_it_reads_the_refund_a_message_asks_for(text: str, args: Any) -> None:
    assert asked_refund(text) == args


def test_the_model_calls_the_tool_then_answers_in_words() -> None:
    model = RefundChatModel()
    asked = HumanMessage("Please refund $120 for order 98765", id="m1")
    call = model.invoke([asked])
    [tool_call] = call.tool_calls
    assert (tool_call["name"], tool_call["args"]) == ("refund", {"order_id": "98765",
                                                                 "amount": "120.00"})
    assert model.invoke([asked]).tool_calls[0]["id"] == tool_call["id"]  # deterministic
    done = ToolMessage("refunded $120.00 on order 98765 as TXN-1", tool_call_id=tool_call["id"])
    assert model.invoke([asked, call, done]).content == (
        "Done: refunded $120.00 on order 98765 as TXN-1.")
    refused = ToolMessage("Not run: no.", tool_call_id=tool_call["id"], status="error")
    assert model.invoke([asked, call, refused]).content == (
        "I could not issue that refund. Not run: no.")
    assert model.invoke([HumanMessage("hello")]).content == HELP
    assert isinstance(model.bind_tools([]), RefundChatModel)
    assert isinstance(model.invoke([AIMessage("hm")]), AIMessage)


def _runtime(db_url: str) -> Any:
    return steward.open(db_url, policy=chat_policy())


def test_a_small_refund_is_paid_as_the_user_asks(db_url: str) -> None:
    with _runtime(db_url) as rt:
        agent = build_refund_chat_agent(checkpointer=rt.checkpointer)
        out = agent.invoke(_said("Please refund $40 for order 24680"), rt.config("T", ALICE))
        [(txn, amount, key)] = payments("24680")
        assert amount == "40.00" and key.startswith("stw-")
        assert out["messages"][-1].content == (
            f"Done: refunded $40.00 on order 24680 as {txn} (issued by alice).")


def test_a_large_refund_waits_for_a_manager(db_url: str) -> None:
    with _runtime(db_url) as rt:
        agent = build_refund_chat_agent(checkpointer=rt.checkpointer)
        out = agent.invoke(_said("Please refund $120 for order 98765"), rt.config("T", ALICE))
        request = out["__interrupt__"][0].value
        assert (request["action"], request["args"], request["required_roles"]) == (
            "refund", {"order_id": "98765", "amount": "120.00"}, ["manager"])
        assert request["reasons"] == ["refunds above 100.00 need a manager's approval"]
        assert payments("98765") == []
        with pytest.raises(steward.ApprovalInvalid, match="four eyes"):
            agent.invoke(Command(resume={"decision": "approve"}), rt.config("T", ALICE))
        out = agent.invoke(Command(resume={"decision": "approve"}), rt.config("T", BOB))
        [(txn, amount, _)] = payments("98765")
        assert amount == "120.00"
        assert out["messages"][-1].content == (
            f"Done: refunded $120.00 on order 98765 as {txn} (issued by bob).")


def test_a_refund_past_the_cap_is_refused_in_words(db_url: str) -> None:
    with _runtime(db_url) as rt:
        agent = build_refund_chat_agent(checkpointer=rt.checkpointer)
        out = agent.invoke(_said("Please refund $600 for order 55555"), rt.config("T", ALICE))
        assert "__interrupt__" not in out and payments("55555") == []
        answer = out["messages"][-1].content
        assert answer.startswith("I could not issue that refund. Not run:")
        assert "refunds on one thread add up to at most 500.00" in answer
