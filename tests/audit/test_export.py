"""``write_whole``, the all-or-nothing write of audit exports and of ``report --html``: a file
is there whole or as it was, never half written, and a failing disk is a ConfigError."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import TextIO

import pytest

from steward.audit.export import write_whole
from steward.errors import ConfigError


def test_the_file_is_written_whole_and_the_writers_value_returned(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    assert write_whole(target, lambda out: out.write("whole\n"), what="the file") == 6
    assert target.read_text() == "whole\n" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_full_disk_is_a_config_error_and_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("before\n")

    def full(out: TextIO) -> None:
        out.write("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(ConfigError) as refused:
        write_whole(target, full, what="the page", flag="--html")
    assert str(refused.value).startswith(f"cannot write the page {str(target)!r}: No space left "
                                         "on device. Check that its directory exists")
    assert refused.value.cli == (f"cannot write the page --html {target}: No space left on "
                                 "device. Check that its directory exists and is writable, and "
                                 "that the disk has room; or name another file with --html.")
    assert isinstance(refused.value.__cause__, OSError)
    assert target.read_text() == "before\n" and [p.name for p in tmp_path.iterdir()] == [
        "out.txt"]  # no temporary file left


def test_a_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    target = tmp_path / "none" / "x.jsonl"
    with pytest.raises(ConfigError) as refused:
        write_whole(target, lambda out: None, what="the audit export")
    assert str(refused.value).startswith(f"cannot write the audit export {str(target)!r}: No "
                                         "such file or directory. Check that its directory")
    assert refused.value.cli is None  # no flag: no command-line wording


def test_any_other_failure_goes_through_and_leaves_nothing(tmp_path: Path) -> None:
    def broken(out: TextIO) -> None:
        out.write("half")
        raise KeyError("x")

    with pytest.raises(KeyError):
        write_whole(tmp_path / "out.txt", broken, what="the file")
    assert list(tmp_path.iterdir()) == []
