"""``steward eval`` end to end on both backends: every guarantee holds, and the scorecard
counts what the evaluation injected; the same seed counts the same; a broken guarantee is
caught and named (issue 19, part 2)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from _support import execute

from steward.evaluation import EvalOptions, EvalResult, evaluate
from steward.evaluation.cases import ADVERSARIAL, KINDS
from steward.report import Scorecard

SEED = 3
SMALL = EvalOptions(runs=7, seed=SEED, fault_rate=0.2, crashes=4, outage=1)


def _run(**options: Any) -> EvalResult:
    given = {**SMALL.__dict__, **options}
    return evaluate(EvalOptions(**given))


def test_every_guarantee_holds_and_the_scorecard_counts_what_was_injected(db_url: str) -> None:
    result = _run(db=db_url)
    assert result.ok, result.broken
    assert result.threads == 28 and result.scorecard.completion.threads == 28
    card: Scorecard = result.scorecard
    # Crashes: each a process killed mid-step, its thread recovered; the scorecard sees every
    # run that died after writing something (a run killed before its first write left none).
    killed = [c for c in result.crashes if c.killed]
    assert len(killed) == 4 and all(c.recovered for c in killed)
    assert 1 <= card.recovery.by_cause.get("crash", 0) <= len(killed)
    # Faults: each failed call was tried again within its run (a retry), or ended the run
    # (an error) that the evaluation then resumed; the provider's outage refused calls.
    injected = result.injected
    assert injected["error"] and injected["timeout"] and injected["down"]
    assert (card.recovery.by_cause.get("retry", 0) + card.recovery.by_cause.get("error", 0)
            == sum(injected.values()))
    assert result.recovered_faults >= 1
    assert card.recovery.recovered == card.recovery.interrupted  # all finished since
    # Adversarial requests: seven runs play every case of each workflow; each was refused,
    # and the scorecard's governance counts the refusals.
    assert sorted(result.adversarial) == sorted(ADVERSARIAL)
    assert all(seen["made"] == seen["refused"] for seen in result.adversarial.values())
    made = {kind: seen["made"] for kind, seen in result.adversarial.items()}
    g = card.governance
    assert g.cross_tenant_refused == made["other_tenant"]
    assert g.refused_votes == {"four_eyes": made["self_approval"],
                               "malformed": made["malformed"],
                               "second_vote": made["second_vote"]}
    rejected = result.cases["refund"]["rejected"] + result.cases["close"]["rejected"]
    assert g.prevented == made["over_limit"] + made["self_grant"] + made["injection"] + rejected
    assert card.audit.complete and result.checked["chain"] == card.audit.chains
    assert {t.workflow for t in card.threads} == {*KINDS, "injection"}
    assert all(row["threads"] == row["as_expected"] for row in result.ends.values()), \
        result.notes


def _counts(value: Any) -> Any:
    """What a scorecard counts, without its durations and timestamps (floats), random ids,
    or the order of its latency tables (by median)."""
    if isinstance(value, dict):
        return {k: _counts(v) for k, v in value.items()
                if k not in ("generated_at", "seconds", "db", "kept")}
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and "name" in v and "calls" in v for v in value):
            return {v["name"]: _counts(v) for v in value}
        return [_counts(v) for v in value]
    if isinstance(value, float) or (isinstance(value, str) and value.startswith("apr_")):
        return None
    return value


def test_the_same_seed_counts_the_same() -> None:
    first, second = (_run(runs=4, crashes=2).to_dict() for _ in range(2))
    assert first["ok"] and second["ok"]
    assert sum(first["injected"].values()) and [c for c in first["crashes"] if c["killed"]]
    assert _counts(first) == _counts(second)


@pytest.mark.parametrize("sabotage", ["pay-twice", "tamper-audit"])
def test_a_broken_guarantee_is_caught_and_named(db_url: str, sabotage: str) -> None:
    result = _run(db=db_url, workflows=("refund",), crashes=1, sabotage=sabotage)
    assert not result.ok and result.kept
    [note] = [n for n in result.notes if n.startswith("sabotage")]
    thread = re.findall(r"refund-\d+", note)[0]  # the thread it broke, as the note names it
    broken = {(b.guarantee, b.thread_id) for b in result.broken}
    if sabotage == "pay-twice":  # a refund the provider made twice, behind Steward's back
        assert broken == {("duplicated", thread), ("forbidden", thread)}
    else:  # an audit event edited in the database
        assert broken == {("chain", thread)}
    assert execute(db_url, "SELECT count(*) FROM steward_threads")[0][0] == 7
