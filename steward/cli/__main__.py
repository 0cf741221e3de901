"""``python -m steward.cli``: the ``steward`` command, as the console script runs it."""

from steward.cli import main

main()
