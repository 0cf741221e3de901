"""``steward sweep`` and ``steward erase``: deleting what has expired, and forgetting a person."""

from __future__ import annotations

from typing import Annotated

import typer

from steward.cli.options import (
    DEFAULT_DB,
    DEFAULT_ROLES,
    AsOption,
    DbOption,
    JsonOption,
    RolesOption,
    acting_as,
    console,
    open_runtime,
    print_data,
)

__all__ = ["erase", "sweep"]


def sweep(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """Delete expired threads and memories, and close approval requests whose time is up."""
    with open_runtime(db, create=True) as rt:
        deleted = rt.sweep()
    if as_json:
        print_data({"deleted_threads": deleted}, True)
    else:
        console.print(f"deleted {len(deleted)} expired threads")


def erase(subject: Annotated[str, typer.Argument(help="Whom to forget (a principal id, or "
                                                 "the subject memories were written for).")],
          who: AsOption, db: DbOption = DEFAULT_DB, roles: RolesOption = DEFAULT_ROLES,
          as_json: JsonOption = False) -> None:
    """Forget a person: memories, the working context of the threads they own or are a
    subject of, their audit payloads (chains still verify); prints the erasure receipt.
    Needs a role that --thread-roles grants admin (e.g. ops=admin)."""
    with open_runtime(db, roles) as rt:
        receipt = rt.erase(subject, by=acting_as(who))
    if as_json:
        print_data(receipt.to_dict(), True)
        return
    if receipt.outcome == "nothing_to_erase":
        console.print(f"nothing to erase: Steward holds no data of {subject!r} in tenant "
                      f"{receipt.tenant!r}; no receipt was stored", highlight=False)
    elif receipt.outcome == "already_erased":
        console.print(f"{subject!r} was already erased: nothing new to erase; the receipt "
                      f"stays {receipt.receipt_id} (digest {receipt.digest})", highlight=False)
    else:
        console.print(f"erased {subject!r} ({receipt.receipt_id}): {receipt.memories} "
                      f"memories, {len(receipt.threads)} threads ({receipt.checkpoints} "
                      f"checkpoints), {receipt.audit_events} audit payloads; receipt digest "
                      f"{receipt.digest}", highlight=False)
