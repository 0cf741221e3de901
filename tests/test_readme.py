"""The README's Python examples run as written, and cannot pass by swallowing an error."""

from __future__ import annotations

import ast
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_python_blocks_run() -> None:
    blocks = _blocks()
    assert blocks, "the README lost its examples"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})


def test_an_example_that_expects_an_error_fails_without_it() -> None:
    # `try: ... except SomeError: ...` passes whether or not the error comes: each such
    # example needs an `else:` that raises, so that an error which disappears fails the test.
    tries = [node for block in _blocks() for node in ast.walk(ast.parse(block))
             if isinstance(node, ast.Try)]
    assert tries, "the README lost its examples of refusals"
    for node in tries:
        assert node.orelse and isinstance(node.orelse[-1], ast.Raise), (
            f"README example at `{ast.unparse(node.body[0])}` catches "
            f"{[ast.unparse(h.type) for h in node.handlers if h.type]} without failing when "
            "nothing is raised: add `else: raise AssertionError(...)`")
