"""Long-term memory scoped by identity: isolation, retention, refused writes, erasure and
recall, on both backends (issue #8)."""

from __future__ import annotations

import time
from typing import Any, TypedDict

import pytest
from _support import ALICE, BOB, EVE, one_node
from langchain_core.embeddings import Embeddings
from langgraph.config import get_config, get_store
from langgraph.types import Command, interrupt

import steward
from steward import MemoryAccessDenied, MemoryRefused, MemoryRules
from steward.identity import principal_from_config
from steward.memory import agent_space, team_space, user_space

OPS = steward.Principal(id="olga", tenant="acme", roles=frozenset({"ops"}))
FIN = steward.Principal(id="fiona", tenant="acme", roles=frozenset({"finance"}))
SPACES = """
@id("same-tenant") permit (principal, action, resource)
when { principal.tenant == context.thread.tenant };
@id("finance-writes-finance") forbid (principal, action == Action::"memory_write",
  resource == MemorySpace::"finance") unless { principal in Role::"finance" };
@id("finance-reads-finance") forbid (principal, action == Action::"memory_read",
  resource == MemorySpace::"finance") unless { principal in Role::"finance" };
"""


def _open(url: str, **options: Any) -> steward.Runtime:
    return steward.open(url, thread_roles={"ops": "admin"}, **options)


def _rows(rt: steward.Runtime) -> int:
    return int(rt.checkpointer.driver.run(_count(), write=False))


def _count() -> Any:
    from steward.storage.ops import Stmt

    return (yield Stmt("SELECT count(*) FROM steward_memory", ())).rows[0][0]


def test_a_principal_reaches_only_its_own_spaces(db_url: str) -> None:
    with _open(db_url, policy=steward.Policy.from_cedar(SPACES)) as rt:
        alice, bob, eve = (rt.store.bind(p) for p in (ALICE, BOB, EVE))
        alice.put(user_space(ALICE, "prefs"), "refunds", {"text": "store credit, never"},
                  purpose="preference")
        bob.put(user_space(BOB), "note", {"text": "bob's"}, purpose="preference")
        assert alice.get(user_space(ALICE, "prefs"), "refunds").value == {
            "text": "store credit, never"}
        for store, who in ((bob, "bob"), (eve, "eve")):
            with pytest.raises(MemoryAccessDenied, match=who):
                store.get(user_space(ALICE, "prefs"), "refunds")
            with pytest.raises(MemoryAccessDenied):
                store.put(user_space(ALICE, "prefs"), "refunds", {"text": "x"},
                          purpose="preference")
            with pytest.raises(MemoryAccessDenied):
                store.delete(user_space(ALICE, "prefs"), "refunds")
        # Searches and listings leave out what the principal may not reach.
        assert [i.key for i in alice.search(("acme",))] == ["refunds"]
        assert [i.key for i in bob.search(("acme",))] == ["note"]
        assert eve.search(("acme",)) == [] and eve.list_namespaces() == []
        assert alice.list_namespaces() == [("acme", "user:alice", "prefs")]
        # An agent's space is the service's own; a team space is the policy's.
        svc = steward.Principal(id="svc-a", tenant="acme", roles=frozenset(), kind="service")
        rt.store.bind(svc).put(agent_space(svc), "k", {"v": 1}, purpose="case-file")
        with pytest.raises(MemoryAccessDenied):
            alice.get(agent_space(svc), "k")
        rt.store.bind(FIN).put(team_space("acme", "finance"), "q3", {"v": 3},
                               purpose="case-file")
        with pytest.raises(MemoryAccessDenied, match="does not allow memory_write on"):
            alice.put(team_space("acme", "finance"), "q3", {"v": 0}, purpose="case-file")
        assert alice.search(("acme", "team:finance")) == []
        alice.put(team_space("acme", "support"), "faq", {"v": 1}, purpose="case-file")
        assert [i.key for i in bob.search(("acme", "team:support"))] == ["faq"]
        assert rt.store.bind(FIN).get(team_space("acme", "finance"), "q3").value == {"v": 3}
        with pytest.raises(MemoryAccessDenied, match="memories belong to someone"):
            rt.store.get(user_space(ALICE), "x")  # outside a run, no principal
        with pytest.raises(steward.ConfigError, match="must start with the tenant"):
            alice.get(("acme",), "x")
        with pytest.raises(steward.ConfigError, match="'user:<id>'"):
            alice.get(("acme", "alice"), "x")
        assert _rows(rt) == 5


class Turn(TypedDict, total=False):
    text: str
    recalled: list[str]


def _remember(state: Turn) -> Turn:
    store = get_store()
    me = principal_from_config(get_config())
    assert me is not None
    store.put(user_space(me, "chat"), f"m{time.time_ns()}", {"text": state["text"]},
              purpose="conversation")
    return {"recalled": [i.value["text"] for i in store.search(user_space(me, "chat"))]}


def test_nodes_use_the_store_as_the_runs_principal(db_url: str) -> None:
    with _open(db_url) as rt:
        graph = one_node(Turn, _remember).compile(checkpointer=rt.checkpointer,
                                                  store=rt.store)
        graph.invoke({"text": "hello"}, rt.config("M1", ALICE))
        out = graph.invoke({"text": "again"}, rt.config("M1", ALICE))
        assert sorted(out["recalled"]) == ["again", "hello"]
        out = graph.invoke({"text": "bob here"}, rt.config("M2", BOB))
        assert out["recalled"] == ["bob here"]  # Bob's run sees only Bob's memories

        def snoop(state: Turn) -> Turn:
            get_store().get(user_space(ALICE, "chat"), "m1")
            return {}

        spy = one_node(Turn, snoop).compile(checkpointer=rt.checkpointer, store=rt.store)
        with pytest.raises(MemoryAccessDenied):
            spy.invoke({"text": "x"}, rt.config("M3", BOB))


def test_retention_expires_and_sweep_removes(db_url: str) -> None:
    rules = MemoryRules(purposes={"conversation": 0.2, "preference": None,
                                  "payment-details": 0})
    with _open(db_url, memory=rules) as rt:
        alice = rt.store.bind(ALICE)
        alice.put(user_space(ALICE), "said", {"text": "hi"}, purpose="conversation")
        alice.put(user_space(ALICE), "likes", {"text": "tea"}, purpose="preference")
        alice.put(user_space(ALICE), "short", {"text": "x"}, purpose="preference", ttl=0.001)
        assert {i.key for i in alice.search(user_space(ALICE))} == {"said", "likes", "short"}
        time.sleep(0.3)
        assert alice.get(user_space(ALICE), "said") is None  # gone from reads at once
        assert [i.key for i in alice.search(user_space(ALICE))] == ["likes"]
        assert _rows(rt) == 3
        rt.sweep()
        assert _rows(rt) == 1


@pytest.mark.parametrize(("value", "purpose", "message"), [
    ({"text": "card 4111 1111 1111 1111"}, "preference", "holds card data"),
    ({"iban": "GB82 WEST 1234 5698 7654 32"}, "preference", "holds iban data"),
    ({"text": "ok"}, "payment-details", "never stored"),
    ({"text": "ok"}, "gossip", "unknown memory purpose 'gossip'"),
    ({"text": "ok"}, None, "written for a purpose"),
    ({"text": "ok", "diagnosis": "flu"}, "preference", "health data is not kept"),
])
def test_refused_writes_change_nothing_and_are_audited(db_url: str, value: dict[str, Any],
                                                       purpose: str | None,
                                                       message: str) -> None:
    def no_health(ns: tuple[str, ...], key: str, v: Any, p: str) -> str | None:
        return "health data is not kept" if "diagnosis" in v else None

    with _open(db_url, memory=MemoryRules(check=no_health)) as rt:
        alice = rt.store.bind(ALICE)
        with pytest.raises(MemoryRefused, match=message):
            alice.put(user_space(ALICE), "k", value, purpose=purpose)
        assert alice.get(user_space(ALICE), "k") is None and _rows(rt) == 0
        [event] = rt.audit.events("memory:acme", ALICE)
        assert event.kind == "memory_refused" and event.payload["key"] == "k"
        assert "4111" not in str(event.payload) and rt.audit.verify("memory:acme") == 1
        with pytest.raises(steward.ThreadAccessDenied):
            rt.audit.events("memory:acme", EVE)


def test_personal_data_is_redacted_on_the_way_in(db_url: str) -> None:
    with _open(db_url) as rt:
        alice = rt.store.bind(ALICE)
        alice.put(user_space(ALICE), "k", {"text": "write to jane.doe@example.com"},
                  purpose="preference")
        assert alice.get(user_space(ALICE), "k").value == {"text": "write to [REDACTED:email]"}


class Case(TypedDict, total=False):
    email: str
    note: Any


def _case(state: Case) -> Case:
    steward.guard("open_case", {"email": state["email"]})
    return {"note": interrupt({"type": "question", "about": state["email"]})}


def test_erasure_forgets_a_person_and_keeps_the_chain(db_url: str) -> None:
    with _open(db_url) as rt:
        graph = one_node(Case, _case).compile(checkpointer=rt.checkpointer, store=rt.store)
        graph.invoke({"email": "alice@acme.example"}, rt.config("E1", ALICE))
        graph.invoke(Command(resume="my address is 1 Main St"), rt.config("E1", ALICE))
        graph.invoke({"email": "bob@acme.example"}, rt.config("E2", BOB))
        rt.store.bind(ALICE).put(user_space(ALICE), "likes", {"text": "tea"},
                                 purpose="preference")
        rt.store.bind(BOB).put(team_space("acme", "support"), "about-alice",
                               {"text": "VIP"}, purpose="case-file", subject="alice")
        rt.store.bind(BOB).put(user_space(BOB), "likes", {"text": "coffee"},
                               purpose="preference")
        events_before = len(rt.audit.events("E1", ALICE))
        with pytest.raises(steward.ThreadAccessDenied):
            rt.erase("alice", by=BOB)  # not an admin of Alice's threads
        assert _rows(rt) == 3 and graph.get_state(rt.config("E1", ALICE)).values

        receipt = rt.erase("alice", by=OPS)
        assert (receipt.subject, receipt.erased_by, receipt.threads) == ("alice", "olga",
                                                                         ("E1",))
        assert receipt.memories == 2 and receipt.checkpoints > 0
        assert receipt.audit_events == events_before and receipt.audit_kept == 0
        assert rt.store.bind(ALICE).search(("acme",)) == []
        assert [i.key for i in rt.store.bind(BOB).search(("acme",))] == ["likes"]
        assert graph.get_state(rt.config("E1", OPS)).values == {}
        assert graph.get_state(rt.config("E2", BOB)).values["email"] == "bob@acme.example"
        events = rt.audit.events("E1", OPS)
        assert len(events) == events_before
        assert all(e.payload == {"erased": receipt.receipt_id} for e in events)
        assert "1 Main St" not in str([e.payload for e in events])
        assert rt.audit.verify("E1") == events_before  # the chain still verifies
        assert rt.audit.verify("E2") > 0
        assert rt.checkpointer.thread_info("E1", OPS)["status"] == "erased"
        [record] = rt.audit.events("memory:acme", OPS, kinds=["erasure"])
        assert record.payload["receipt_id"] == receipt.receipt_id
        assert record.payload["digest"] == receipt.digest


def test_a_forged_tombstone_is_tampering(db_url: str) -> None:
    from steward.storage.ops import Stmt

    with _open(db_url) as rt:
        graph = one_node(Case, _case).compile(checkpointer=rt.checkpointer)
        graph.invoke({"email": "a@acme.example"}, rt.config("T1", ALICE))
        j = rt.checkpointer.sql.json_param

        def forge() -> Any:
            yield Stmt(f"UPDATE steward_audit SET payload = {j} WHERE thread_id = ? AND seq = 2",
                       ('{"erased": "era_000000000000000000000000"}', "T1"))

        rt.checkpointer.driver.run(forge(), write=True)
        with pytest.raises(steward.AuditTampered, match="never happened"):
            rt.audit.verify("T1")

        graph.invoke({"email": "b@acme.example"}, rt.config("T2", ALICE))

        def edit() -> Any:
            yield Stmt(f"UPDATE steward_audit SET payload = {j} WHERE thread_id = ? AND seq = 1",
                       ('{"input": {"keys": ["x"]}}', "T2"))

        rt.checkpointer.driver.run(edit(), write=True)
        with pytest.raises(steward.AuditTampered, match="payload was edited"):
            rt.audit.verify("T2")


class Words(Embeddings):
    """A tiny bag-of-words embedding: texts that share words are neighbours."""

    VOCAB = ("refund", "money", "credit", "email", "receipt", "peanut", "allergy", "call")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        words = text.lower().split()
        return [1.0 + sum(w.startswith(v) for w in words) if i == 0 else
                float(sum(w.startswith(v) for w in words)) for i, v in enumerate(self.VOCAB)]


NOTES = {"n1": "prefers a refund in money not store credit",
         "n2": "wants every receipt by email",
         "n3": "peanut allergy, no snacks in the parcel"}


@pytest.mark.parametrize("embeddings", ["words", "minilm"])
def test_semantic_recall_finds_the_nearest_memories_in_reach(db_url: str,
                                                             embeddings: str) -> None:
    rules = MemoryRules(embeddings=Words() if embeddings == "words" else None, fields=["text"])
    with _open(db_url, memory=rules) as rt:
        alice, bob = rt.store.bind(ALICE), rt.store.bind(BOB)
        for key, text in NOTES.items():
            alice.put(user_space(ALICE, "notes"), key, {"text": text, "n": int(key[1])},
                      purpose="preference")
        bob.put(user_space(BOB, "notes"), "b1", {"text": NOTES["n1"]}, purpose="preference")
        alice.put(user_space(ALICE, "notes"), "plain", {"other": "no text"},
                  purpose="preference")
        hits = alice.search(("acme",), query="money back as a refund instead of credit")
        assert [h.key for h in hits][:1] == ["n1"] and "b1" not in {h.key for h in hits}
        assert hits[0].score is not None and hits[0].score > hits[1].score
        hits = alice.search(user_space(ALICE), query="peanut allergy", limit=1)
        assert [h.key for h in hits] == ["n3"]
        # Structured recall: filters, on both backends, with and without a query.
        assert [h.key for h in alice.search(user_space(ALICE), filter={"n": {"$gte": 2}})] \
            in (["n3", "n2"], ["n2", "n3"])
        assert [h.key for h in alice.search(user_space(ALICE), query="receipt email",
                                            filter={"n": 2})] == ["n2"]


async def test_the_async_twins(db_url: str) -> None:
    async with steward.aopen(db_url, thread_roles={"ops": "admin"}) as rt:
        alice = rt.store.bind(ALICE)
        await alice.aput(user_space(ALICE), "k", {"v": 1}, purpose="preference")
        assert (await alice.aget(user_space(ALICE), "k")).value == {"v": 1}
        assert [i.key for i in await alice.asearch(("acme",))] == ["k"]
        with pytest.raises(MemoryRefused):
            await alice.aput(user_space(ALICE), "c", {"t": "4111 1111 1111 1111"},
                             purpose="preference")
        receipt = await rt.aerase("alice", by=OPS)
        assert receipt.memories == 1 and await alice.asearch(("acme",)) == []
        await rt.asweep()


def test_bad_memory_rules_are_refused_at_open() -> None:
    for bad in ({"purposes": {}}, {"purposes": {"x": -1}}, {"default_purpose": "nope"},
                {"refuse": "card"}, {"refuse": ["tattoo"]}, {"fields": "text"}):
        with pytest.raises(steward.ConfigError):
            MemoryRules(**bad)
    with pytest.raises(steward.ConfigError, match="memory= takes"):
        steward.open("sqlite://:memory:", memory={"purposes": {}})  # type: ignore[arg-type]


def _store_card(state: Turn) -> Turn:
    me = principal_from_config(get_config())
    assert me is not None
    get_store().put(user_space(me), "card", {"text": state["text"]}, purpose="preference")
    return {}


def test_a_refused_write_in_a_node_is_audited_in_its_thread(db_url: str) -> None:
    with _open(db_url) as rt:
        graph = one_node(Turn, _store_card).compile(checkpointer=rt.checkpointer,
                                                    store=rt.store)
        with pytest.raises(MemoryRefused, match="holds card data"):
            graph.invoke({"text": "4111 1111 1111 1111"}, rt.config("M9", ALICE))
        [event] = rt.audit.events("M9", ALICE, kinds=["memory_refused"])
        assert event.principal_id == "alice" and event.payload["key"] == "card"
        assert "4111" not in str(event.payload) and _rows(rt) == 0
        assert rt.audit.verify("M9") > 0


class Counting(Words):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.seen += texts
        return super().embed_documents(texts)


def test_bad_requests_are_clear_errors_and_change_nothing(db_url: str) -> None:
    embeddings = Counting()
    with _open(db_url, memory=MemoryRules(embeddings=embeddings, fields=["text"])) as rt:
        alice = rt.store.bind(ALICE)
        alice.put(user_space(ALICE), "k", {"text": "refund please"}, purpose="preference")
        assert embeddings.seen == ["refund please"]
        with pytest.raises(MemoryRefused):
            alice.put(user_space(ALICE), "c", {"text": "card 4111 1111 1111 1111"},
                      purpose="preference")
        assert embeddings.seen == ["refund please"]  # a refused value is never embedded
        with pytest.raises(steward.ConfigError, match="non-empty string"):
            alice.put(user_space(ALICE), "", {"text": "x"}, purpose="preference")
        with pytest.raises(steward.ConfigError, match="unknown filter operator"):
            alice.search(user_space(ALICE), filter={"text": {"$near": 1}})
        with pytest.raises(steward.ConfigError):
            rt.store.bind("alice")  # type: ignore[arg-type]
        with pytest.raises(steward.ConfigError):
            rt.erase("", by=OPS)
        nobody = rt.erase("nobody", by=OPS)
        assert (nobody.memories, nobody.threads, nobody.audit_events) == (0, (), 0)
        assert nobody.outcome == "nothing_to_erase" and nobody.receipt_id is None
        assert [i.key for i in alice.search(("acme",))] == ["k"] and _rows(rt) == 1


def _erasures(rt: steward.Runtime) -> list[tuple[Any, ...]]:
    from steward.storage.ops import Stmt

    def op() -> Any:
        return (yield Stmt("SELECT receipt_id, subject FROM steward_erasures ORDER BY at")).rows

    return list(rt.checkpointer.driver.run(op(), write=False))


def test_erasing_needs_a_tenant_admin_and_a_refusal_changes_nothing(db_url: str) -> None:
    from _support import snapshot

    intern = steward.Principal(id="zed", tenant="acme", roles=frozenset({"intern"}))
    with _open(db_url) as rt:
        graph = one_node(Case, _case).compile(checkpointer=rt.checkpointer, store=rt.store)
        graph.invoke({"email": "jane@shop.example"}, rt.config("C1", ALICE,
                                                               subjects=["jane@shop.example"]))
        rt.store.bind(BOB).put(team_space("acme", "support"), "jane", {"text": "VIP"},
                               purpose="case-file", subject="jane@shop.example")
        before = snapshot(db_url)
        for who in (intern, ALICE, BOB):  # a customer owns no thread: still no right to erase
            with pytest.raises(steward.ThreadAccessDenied, match="thread_roles=") as caught:
                rt.erase("jane@shop.example", by=who)
            assert "--thread-roles ROLE=admin" in str(caught.value.cli)
        after = snapshot(db_url)
        audit_before, audit_after = before.pop("steward_audit"), after.pop("steward_audit")
        assert after == before and _rows(rt) == 1 and _erasures(rt) == []
        assert all(row in audit_after for row in audit_before)
        refusals = rt.audit.events("memory:acme", OPS, kinds=["erasure_refused"])
        assert [e.principal_id for e in refusals] == ["zed", "alice", "bob"]
        assert "jane@shop.example" not in str([e.payload for e in refusals])  # redacted
        assert len(audit_after) == len(audit_before) + 3
        assert rt.audit.verify("memory:acme") == 3
        assert graph.get_state(rt.config("C1", ALICE)).values["email"] == "jane@shop.example"


@steward.effect
def _ship(to: str) -> dict[str, Any]:
    return {"shipped_to": to}


class Parcel(TypedDict, total=False):
    order: str
    customer: str
    result: Any
    note: Any


def _parcel(state: Parcel) -> Parcel:
    customer = f"{state['order']}@shop.example"  # found out inside the node, as a lookup would
    steward.add_subjects(customer)
    steward.guard("ship", {"to": customer})
    note = interrupt({"type": "question", "about": customer})
    return {"customer": customer, "result": _ship(customer), "note": note}


def test_erasure_reaches_the_threads_about_a_subject(db_url: str) -> None:
    with _open(db_url) as rt:
        graph = one_node(Parcel, _parcel).compile(checkpointer=rt.checkpointer)
        graph.invoke({"order": "jane"}, rt.config("S1", ALICE))  # subject added by the node
        graph.invoke(Command(resume="leave it with jane at the door"), rt.config("S1", ALICE))
        graph.invoke({"order": "omar"}, rt.config("S2", BOB, subjects=["jane@shop.example"]))
        graph.invoke({"order": "omar"}, rt.config("S3", BOB))
        assert rt.checkpointer.thread_info("S1", OPS)["subjects"] == ["jane@shop.example"]
        assert rt.checkpointer.thread_info("S2", OPS)["subjects"] == ["jane@shop.example",
                                                                       "omar@shop.example"]
        lengths = {t: len(rt.audit.events(t, OPS)) for t in ("S1", "S2", "S3")}

        receipt = rt.erase("jane@shop.example", by=OPS)
        assert receipt.outcome == "erased" and receipt.threads == ("S1", "S2")
        assert receipt.audit_events == lengths["S1"] + lengths["S2"]
        for tid in ("S1", "S2"):
            info = rt.checkpointer.thread_info(tid, OPS)
            assert info["status"] == "erased" and "jane@shop.example" not in info["subjects"]
            assert graph.get_state(rt.config(tid, OPS)).values == {}
            assert list(rt.checkpointer.list({"configurable": {"thread_id": tid,
                                                               "principal": OPS}})) == []
            events = rt.audit.events(tid, OPS)
            assert len(events) == lengths[tid] and rt.audit.verify(tid) == lengths[tid]
            assert "jane" not in str([e.payload for e in events])
        assert rt.checkpointer.thread_info("S2", OPS)["subjects"] == ["omar@shop.example"]
        assert graph.get_state(rt.config("S3", BOB)).values == {"order": "omar"}
        assert rt.audit.verify("S3") == lengths["S3"]


def test_erasing_again_or_nobody_mints_no_receipt(db_url: str) -> None:
    with _open(db_url) as rt:
        graph = one_node(Case, _case).compile(checkpointer=rt.checkpointer, store=rt.store)
        graph.invoke({"email": "jane@shop.example"}, rt.config("D1", ALICE,
                                                               subjects=["jane@shop.example"]))
        first = rt.erase("jane@shop.example", by=OPS)
        chain = len(rt.audit.events("memory:acme", OPS))
        again = rt.erase("jane@shop.example", by=OPS)
        assert (first.outcome, again.outcome) == ("erased", "already_erased")
        assert again.receipt_id == first.receipt_id and again.digest == first.digest
        assert again.threads == first.threads == ("D1",)
        unknown = rt.erase("nobody@shop.example", by=OPS)
        assert unknown.outcome == "nothing_to_erase" and unknown.receipt_id is None
        assert [r[0] for r in _erasures(rt)] == [first.receipt_id]
        assert len(rt.audit.events("memory:acme", OPS)) == chain
        # New data about the person after the erasure is erased by a new erasure.
        graph.invoke({"email": "jane@shop.example"}, rt.config("D2", ALICE,
                                                               subjects=["jane@shop.example"]))
        later = rt.erase("jane@shop.example", by=OPS)
        assert later.outcome == "erased" and later.threads == ("D2",)
        assert later.receipt_id != first.receipt_id


async def test_subjects_and_erasure_async_twins(db_url: str) -> None:
    async def parcel(state: Parcel) -> Parcel:
        await steward.aadd_subjects(f"{state['order']}@shop.example")
        return {"customer": f"{state['order']}@shop.example"}

    async with steward.aopen(db_url, thread_roles={"ops": "admin"}) as rt:
        graph = one_node(Parcel, parcel).compile(checkpointer=rt.checkpointer)
        await graph.ainvoke({"order": "li"}, rt.config("A1", ALICE, subjects=["x@shop.example"]))
        info = await rt.checkpointer.athread_info("A1", OPS)
        assert info is not None and info["subjects"] == ["li@shop.example", "x@shop.example"]
        with pytest.raises(steward.ThreadAccessDenied):
            await rt.aerase("li@shop.example", by=ALICE)
        receipt = await rt.aerase("li@shop.example", by=OPS)
        assert receipt.threads == ("A1",) and (await graph.aget_state(
            rt.config("A1", OPS))).values == {}
        assert (await rt.aerase("li@shop.example", by=OPS)).outcome == "already_erased"


def test_bad_subjects_are_refused() -> None:
    with steward.open("sqlite://:memory:") as rt:
        for bad in ("jane@shop.example", [""], [3], None):
            with pytest.raises(steward.ConfigError, match="subject"):
                rt.config("T", ALICE, subjects=bad)  # type: ignore[arg-type]
    with pytest.raises(steward.ConfigError, match="inside a node"):
        steward.add_subjects("jane@shop.example")


def test_a_bad_subject_added_in_a_node_fails_the_node_and_records_nothing(db_url: str) -> None:
    def node(state: Parcel) -> Parcel:
        steward.add_subjects(state["order"])  # "" is no one
        return {"customer": state["order"]}

    with _open(db_url) as rt:
        graph = one_node(Parcel, node).compile(checkpointer=rt.checkpointer)
        graph.invoke({"order": "ok@shop.example"}, rt.config("B1", ALICE))
        with pytest.raises(steward.ConfigError, match="a subject must be a non-empty string"):
            graph.invoke({"order": ""}, rt.config("B1", ALICE))
        assert rt.checkpointer.thread_info("B1", ALICE)["subjects"] == ["ok@shop.example"]
