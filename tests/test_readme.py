"""The README's Python examples run as written, and cannot pass by swallowing an error."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from _kms import Kms

README = Path(__file__).resolve().parent.parent / "README.md"


# ```python blocks run as they are. Blocks that need something the tests do not start are
# fenced ```python <what they need>, and are only compiled: `server` (a running `langgraph
# dev`; tests/server/test_server.py drives the real server the same way) and `aws` (an
# Aurora endpoint, an ADOT collector; tests/aws/test_rds.py and tests/test_telemetry.py
# check the same calls offline, against the local PostgreSQL and a local OTLP receiver).
NEEDS = {"server", "aws"}
# Blocks fenced ```python kms run against AWS KMS as moto's server mode plays it
# (tests/_kms.py), with a KMS key named alias/steward.
RUN_WITH = {"kms"}
FENCE = re.compile(r"^```python( [\w-]+)?\n(.*?)^```", flags=re.S | re.M)


def _fenced() -> list[tuple[str, str]]:
    return [(need.strip(), code) for need, code in FENCE.findall(README.read_text())]


def _blocks(need: str = "") -> list[str]:
    return [code for fenced, code in _fenced() if fenced == need]


def test_blocks_that_do_not_run_only_need_a_server() -> None:
    opened = re.findall(r"^```py\S*", README.read_text(), flags=re.M)
    assert len(opened) == len(_fenced()), f"a Python block with an unknown fence: {opened}"
    needs = [need for need, _ in _fenced() if need and need not in RUN_WITH]
    assert needs and set(needs) <= NEEDS, needs
    for need, code in _fenced():
        compile(code, f"{README} (a block that needs: {need or 'nothing'})", "exec")


def test_readme_python_blocks_run() -> None:
    blocks = _blocks()
    assert blocks, "the README lost its examples"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})


def test_readme_kms_blocks_run_against_kms(kms: Kms) -> None:
    blocks = _blocks("kms")
    assert blocks, "the README lost its AWS KMS example"
    try:
        kms.admin.create_alias(AliasName="alias/steward", TargetKeyId=kms.key_id)
    except kms.admin.exceptions.AlreadyExistsException:  # the session's server: another test
        kms.admin.update_alias(AliasName="alias/steward", TargetKeyId=kms.key_id)
    for block in blocks:
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})


def test_an_example_that_expects_an_error_fails_without_it() -> None:
    # `try: ... except SomeError: ...` passes whether or not the error comes: each such
    # example needs an `else:` that raises, so that an error which disappears fails the test.
    tries = [node for block in [*_blocks(), *_blocks("kms")]
             for node in ast.walk(ast.parse(block)) if isinstance(node, ast.Try)]
    assert tries, "the README lost its examples of refusals"
    for node in tries:
        assert node.orelse and isinstance(node.orelse[-1], ast.Raise), (
            f"README example at `{ast.unparse(node.body[0])}` catches "
            f"{[ast.unparse(h.type) for h in node.handlers if h.type]} without failing when "
            "nothing is raised: add `else: raise AssertionError(...)`")
