"""``steward eval``: the example workflows run under injected faults, crashes and adversarial
requests on a fresh database, the scorecard of that run, and the guarantees checked against
the systems of record.

- ``runner``: :func:`evaluate` and :class:`EvalOptions` (the rounds, recovery, the outage);
- ``cases``: what each run does (the cases of each workflow and their steps);
- ``play``: one step played as a user would, and how it ended;
- ``crash``: a step played in a child process killed (SIGKILL) at a chosen point;
- ``checks``: the guarantees, against the payments ledger, the records, the approvals and the
  audit trail;
- ``world``: the cast, the runtime and the graphs; ``planner``: the offline model that obeys
  what it reads, and the injection team it plans for;
- ``result``: :class:`EvalResult` and how it is printed.

The faults themselves are injected by the example systems of record
(``steward.examples.faults``), which consult the plan the evaluation installs.
"""

from steward.evaluation.result import GUARANTEES, Broken, Crash, EvalResult, render
from steward.evaluation.runner import SABOTAGE, EvalOptions, evaluate

__all__ = ["GUARANTEES", "SABOTAGE", "Broken", "Crash", "EvalOptions", "EvalResult", "evaluate",
           "render"]
