"""``EvalOptions.checked``: each bad option refused with a ConfigError naming it and its value,
worded for the command line with its flag; a sabotage that finds nothing to break says so."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from steward.errors import ConfigError
from steward.evaluation import EvalOptions, evaluate

WHAT = "name each of refund, access, close, research at most once"


@pytest.mark.parametrize(("given", "says", "cli"), [
    ({"runs": 0}, "runs is how many times each workflow runs: at least 1, got 0.",
     "--runs is how many times each workflow runs: at least 1, got 0."),
    ({"fault_rate": 1.5}, "fault_rate is a share of calls, between 0 and 1, got 1.5.",
     "--fault-rate is a share of calls, between 0 and 1, got 1.5."),
    ({"fault_rate": -0.1}, "fault_rate is a share of calls, between 0 and 1, got -0.1.",
     "--fault-rate is a share of calls, between 0 and 1, got -0.1."),
    ({"crashes": -1}, "crashes counts steps killed mid-run: 0 or more, got -1.",
     "--crashes counts steps killed mid-run: 0 or more, got -1."),
    ({"outage": -2}, "outage counts refund runs with the payment provider down: 0 or more, "
                     "got -2.", "--outage counts refund runs with the payment provider down: "
                                "0 or more, got -2."),
    ({"workflows": ("refund", "payroll")},
     f"workflows name no workflow 'payroll' (got 'refund,payroll'): {WHAT}.",
     f"--workflows name no workflow 'payroll' (got 'refund,payroll'): {WHAT}, separated by "
     "commas."),
    ({"workflows": ("refund", "close", "refund")},
     f"workflows name 'refund' twice (got 'refund,close,refund'): {WHAT}.",
     f"--workflows name 'refund' twice (got 'refund,close,refund'): {WHAT}, separated by "
     "commas."),
    ({"workflows": ()}, f"workflows name none (got ''): {WHAT}.",
     f"--workflows name none (got ''): {WHAT}, separated by commas."),
    ({"tool_timeout": 0.0}, "tool_timeout is each agent tool call's timeout in seconds: above "
                            "0, got 0.", None),
    ({"tool_timeout": -1.0}, "tool_timeout is each agent tool call's timeout in seconds: above "
                             "0, got -1.", None),
    ({"sabotage": "bogus"}, "sabotage is one of pay-twice, tamper-audit, got 'bogus'.",
     "--sabotage is one of pay-twice, tamper-audit, got 'bogus'."),
    ({"sabotage": "pay-twice", "workflows": ("access",)},
     "sabotage pay-twice needs the refund workflow: add refund to workflows (got 'access').",
     "--sabotage pay-twice needs the refund workflow: add refund to --workflows (got "
     "'access')."),
])
def test_a_bad_option_is_refused_naming_it_and_its_value(given: dict[str, Any], says: str,
                                                         cli: str | None) -> None:
    with pytest.raises(ConfigError) as caught:
        EvalOptions(**given).checked()
    assert str(caught.value) == says
    assert caught.value.cli == cli
    with pytest.raises(ConfigError, match=f"^{re.escape(says)}$"):  # before it runs anything
        evaluate(EvalOptions(**given))


def test_good_options_are_kept_as_given() -> None:
    options = EvalOptions(runs=1, fault_rate=0.0, crashes=0, outage=0, workflows=("close",),
                          tool_timeout=0.5, sabotage="tamper-audit")
    assert options.checked() is options


def test_pay_twice_without_a_refunded_thread_says_to_give_more_runs(tmp_path: Path) -> None:
    # Seed 4's first refund case is over the cap: the policy denies it, nothing is refunded.
    with pytest.raises(ConfigError) as caught:
        evaluate(EvalOptions(runs=1, seed=4, fault_rate=0.0, crashes=0, outage=0,
                             workflows=("refund",), sabotage="pay-twice",
                             db=f"sqlite:///{tmp_path}/eval.db"))
    assert str(caught.value) == ("sabotage pay-twice found no refunded thread to pay twice: "
                                 "give more runs.")
    assert caught.value.cli == ("--sabotage pay-twice found no refunded thread to pay twice: "
                                "give more --runs.")
