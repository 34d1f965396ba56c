"""One named check of a verification: what was checked, whether it held, and why.

Every verification that the CLI reports (``ledger verify``, ``store verify``,
``store fetch``, the demo) is a list of these, so that the failing check is
named the same way in text and in ``--json``.
"""

from __future__ import annotations

from dataclasses import dataclass

OK = "ok"
FAILED = "failed"
INCOMPLETE = "incomplete"


@dataclass(frozen=True)
class Check:
    """One check.

    Attributes:
        name: A short, stable name (e.g. ``signer-identity``, ``orderer-signatures``).
        ok: True if it held, False if it failed, None if it could not be made (``detail`` says why).
        detail: What was found; for a failure, what differs and where.
    """

    name: str
    ok: bool | None
    detail: str

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def all_hold(checks: list[Check]) -> bool:
    """True when no check failed and at least one was made."""
    return any(c.ok for c in checks) and not any(c.ok is False for c in checks)


def verdict(checks: list[Check]) -> str:
    """The overall verdict: ``failed`` if a check failed (or none holds), else ``incomplete`` if one could not
    be made, else ``ok``. An incomplete verification is not a verified one."""
    if not all_hold(checks):
        return FAILED
    return INCOMPLETE if any(c.ok is None for c in checks) else OK

