"""The notebooks in notebooks/ run top to bottom, offline (issue #7), and show what each is
about: every notebook must print its story's key lines, so a refusal that disappears, or a
step that silently prints nothing, fails here."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))

# What each notebook's outputs (printed text and displayed values) must contain.
EXPECTED = {
    "01_quickstart": [
        "You asked: where is my order?",
        "'tenant': 'acme', 'owner': 'alice'",
        "refused: principal 'eve' of tenant 'globex' may not read thread 'T-1'",
    ],
    "02_approvals_and_policies": [
        "refunded 40.00 (approved by the policy)",
        "'type': 'approval_request'",
        "'reasons': ['refunds above 100.00 need a manager']",
        "cannot vote on its own request (four eyes)",
        "Bob may approve: ['apr_",
        "refunded 120.00 (approved by bob)",
        "'status': 'approved'",
        "refused: principal 'bob' may not write thread 'T-big'",
        "as an approver it may read the thread and resume it with a vote",
        "'allowed_decisions': ['approve', 'edit', 'reject']",
        "refused: the edited arguments of 'issue_refund' are not allowed: no refund above 1000.00",
        "refunded 90.00 (approved by bob)",
        "refunded 150.00 (approved by a standing approval)",
        "refunded 200.00 (approved by a standing approval)",
        "uses left: 0",
        "asks again: True",
        "the agent waits for: ['manager']",
        "agent: Done: refunded $120.00 on order 98765.",
    ],
    "03_audit_and_tampering": [
        "'to': '[REDACTED:email]'",
        "verified 4 events",
        "detected: the audit chain of thread 'T-1' breaks at event 2",
        "the thread does not resume: the audit chain",
    ],
    "04_crash_and_resume": [
        "effect done, node still running",
        "killed; refunds issued so far: ['stw-",
        "{'receipt': 'refund of 98765'}",
        "refunds issued in all: 1",
    ],
    "05_memory": [
        "refunds   prefers a refund to the card",
        "refused: 'eve' of tenant 'globex' cannot read memories of tenant 'acme'",
        "refused: memory 'payment' holds card data",
        "refused: memories for the purpose 'payment-details' are never stored",
        "after 1.2 s: None | rows: 1",
        "after sweep: rows: 0",
        "['peanut allergy: no snacks in the parcel']",
        "'memories': 3",
        "verified 4 events of T-1",
    ],
}


def _outputs(book: nbformat.NotebookNode) -> str:
    """Everything the code cells printed or displayed, as text."""
    parts = []
    for cell in book.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                # As printed: the kernel may flush one print() in two stream messages.
                parts.append(out["text"])
            elif "data" in out:
                parts.append(f"\n{out['data'].get('text/plain', '')}\n")
    return "".join(parts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_shows_its_story(path: Path, tmp_path: Path) -> None:
    book = nbformat.read(path, as_version=4)
    # execute() raises CellExecutionError at the first failing cell (an assert included).
    NotebookClient(book, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown = _outputs(book)
    missing = [line for line in EXPECTED[path.stem] if line not in shown]
    assert not missing, f"{path.name} no longer shows {missing}; it printed:\n{shown}"


def test_there_are_notebooks() -> None:
    assert [p.stem for p in NOTEBOOKS] == list(EXPECTED) == [
        "01_quickstart", "02_approvals_and_policies", "03_audit_and_tampering",
        "04_crash_and_resume", "05_memory"]
