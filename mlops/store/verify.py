"""Checking a model folder against an expected manifest (e.g. the one on the ledger)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from modelledger.mlops.store.digest import Manifest, ModelTreeError, digest_folder


@dataclass
class VerifyReport:
    """What differs between a folder and the manifest it should match.

    Attributes:
        changed: Paths present on both sides with another size or digest.
        missing: Paths in the manifest but not in the folder.
        extra: Paths in the folder but not in the manifest.
        error: Set when the folder itself cannot be digested (e.g. a symlink leaving it).
    """

    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra or self.error)

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "changed": self.changed,
            "missing": self.missing,
            "extra": self.extra,
            "error": self.error,
        }


def compare(actual: Manifest, expected: Manifest) -> VerifyReport:
    """The exact differences between two manifests."""
    have = {f.path: f for f in actual.files}
    want = {f.path: f for f in expected.files}
    return VerifyReport(
        changed=sorted(p for p in have.keys() & want.keys() if have[p] != want[p]),
        missing=sorted(want.keys() - have.keys()),
        extra=sorted(have.keys() - want.keys()),
    )


def verify_folder(folder: str | Path, expected: Manifest) -> VerifyReport:
    """Digests ``folder`` and compares it with ``expected``; never raises for a bad tree."""
    try:
        actual = digest_folder(folder)
    except (ModelTreeError, OSError) as exc:
        return VerifyReport(error=str(exc))
    return compare(actual, expected)
