"""What "verified" means, in one function that every product path calls.

A model version is verified when all of these hold (each is a named check,
reported in text and in ``--json``):

- ``ledger-status``: the ledger record's current status is one a usable
  version has (``REGISTERED``, ``APPROVED``, ``DEPLOYED``): not ``REVOKED``
  nor ``REJECTED``, nor one this code does not know;
- ``ledger-manifest``: the record's ``modelDigest`` and ``manifestDigest`` are
  those of its own manifest;
- ``bytes``: the bytes (a folder, or the anchored copy re-read in full) are
  exactly the record's manifest (and, for the anchored copy, every object is
  still COMPLIANCE-locked); its detail names the number of files, their size
  and, for the anchored copy, the lock mode and the earliest end of retention;
- ``signature``: model-signing verifies the signature bundle (the DSSE
  signature over its in-toto statement, under the key of its leaf certificate);
- ``signer-chain``: that certificate is a valid identity of the registrant's
  organisation, as the channel configuration in force defines it (its MSP's
  root and intermediate CAs, CRLs and NodeOUs, read from the peer with
  ``cscc GetChannelConfig``; see :class:`~modelledger.sdk.ledger.msp.MspTrust`);
- ``signer-identity``: it is the registrant's own certificate: its SHA-256
  fingerprint is the record's ``registrant.certFingerprint`` and its role
  attribute the record's ``registrant.role`` (another identity of the same
  organisation fails here, and is named);
- ``signed-digest``: the statement signs the record's ``modelDigest`` and lists
  exactly the record's files and digests.

:func:`verify_version` makes every check (none is skipped because another
failed, except those that need a verified signature when there is none:
they are listed as not made), so a report names every problem at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from modelledger.mlops.store.copy_checks import VerifyReport
from modelledger.mlops.store.digest import Manifest, ModelTreeError
from modelledger.mlops.store.index import StoragePointer, StoreError, read_blob, read_index
from modelledger.mlops.store.ledger_records import ledger_manifest, ledger_pointer
from modelledger.mlops.store.signing import SignatureError, SignedStatement, open_bundle
from modelledger.sdk.gateway.gateway import Network
from modelledger.sdk.ledger.checks import Check, all_hold
from modelledger.sdk.ledger.config import channel_config
from modelledger.sdk.ledger.msp import MspError, MspTrust, describe
from modelledger.sdk.registry.client import RegistryClient
from modelledger.sdk.registry.records import ModelVersion
from modelledger.sdk.registry.statuses import status_word

LEDGER_STATUS = "ledger-status"
LEDGER_MANIFEST = "ledger-manifest"
BYTES = "bytes"
SIGNATURE = "signature"
SIGNER_CHAIN = "signer-chain"
SIGNER_IDENTITY = "signer-identity"
SIGNED_DIGEST = "signed-digest"
REVOKED = "REVOKED"
REJECTED = "REJECTED"
# The statuses of chaincode/CONTRACT.md ("Status") under which a version may be called verified.
USABLE_STATUSES = ("REGISTERED", "APPROVED", "DEPLOYED")


@dataclass(frozen=True)
class LedgerEvidence:
    """What the ledger says about a version: its record, and the registrant organisation's MSP.

    Attributes:
        record: The ledger record.
        registrant_msp: The registrant organisation's MSP in the channel configuration in force, or None
            when it cannot be had (``msp_error`` says why; the ``signer-chain`` check then fails).
        msp_error: Why there is no MSP.
    """

    record: ModelVersion
    registrant_msp: MspTrust | None
    msp_error: str = ""

    @property
    def pointer(self) -> StoragePointer:
        return ledger_pointer(record=self.record)


def ledger_evidence(network: Network, chaincode: str, name: str, version: str) -> LedgerEvidence:
    """Reads a version's record and the registrant organisation's MSP (from the channel configuration in force).

    Raises:
        GatewayError: The record cannot be read (e.g. ``NotFound``), or the configuration cannot be queried.
    """
    record = RegistryClient(network, chaincode).get_model_version(name, version)
    config = channel_config(network)
    try:
        return LedgerEvidence(record, config.msp(record.registrant.msp_id))
    except MspError as exc:
        return LedgerEvidence(record, None, str(exc))


def anchored_bundle(client: Any, pointer: StoragePointer) -> tuple[bytes | None, str]:
    """The signature bundle stored with the anchored copy, or None and why there is none."""
    try:
        index = read_index(client, pointer)
        if index.bundle is None:
            return None, f"the anchored copy {pointer.uri} holds no signature bundle"
        return b"".join(read_blob(client, pointer.bucket, index.bundle)), ""
    except StoreError as exc:
        return None, f"the signature bundle cannot be read: {exc}"
    except (ClientError, BotoCoreError) as exc:
        return None, f"the signature bundle cannot be read from {pointer.uri}: {exc}"


@dataclass
class Verification:
    """The outcome of :func:`verify_version`: every check, and the byte comparison in detail.

    Attributes:
        target: What was verified, for messages.
        name: The model's name on the ledger.
        version: Its version.
        checks: Every check, in order.
        content: The byte comparison (files, size, locks, warnings).
        signed_by: Who signed the bundle the signature check verified: ``role@MSP`` when its certificate is an
            identity of the registrant's organisation, else the certificate's subject; empty if none verified.
        ledger_status: The record's status on the ledger, as the ledger gives it.
    """

    target: str
    name: str
    version: str
    checks: list[Check]
    content: VerifyReport = field(default_factory=VerifyReport)
    signed_by: str = ""
    ledger_status: str = ""

    @property
    def ok(self) -> bool:
        return all_hold(self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]

    @property
    def unchecked(self) -> list[Check]:
        """Checks that could not be made (those that need a verified signature, when there is none)."""
        return [c for c in self.checks if c.ok is None]

    @property
    def warnings(self) -> list[str]:
        """What does not fail the verification but a reader should know (see :class:`VerifyReport`)."""
        return self.content.warnings

    def check(self, name: str) -> Check:
        """The check named ``name``."""
        return next(c for c in self.checks if c.name == name)

    def covered(self) -> str:
        """What the verification covered, in one line: files and size, digests, signer, lock, ledger status.

        E.g. ``8 files, 59 KB, digests match; signature by registrar@Org1MSP verified; locked (COMPLIANCE) until
        2036-12-07 10:00 UTC; registered on the ledger``.
        """
        names = {c.name: c.ok for c in self.checks}
        if not self.signed_by:
            signature = "signature not verified"
        elif all(names.get(n) for n in (SIGNATURE, SIGNER_CHAIN, SIGNER_IDENTITY, SIGNED_DIGEST)):
            signature = f"signature by {self.signed_by} verified"
        else:
            signature = f"signature by {self.signed_by} does not pass every signer check"
        status = f"{status_word(self.ledger_status) if self.ledger_status else '(no status)'} on the ledger"
        return "; ".join((self.content.covered(), signature, self.content.lock(), status))

    def summary(self) -> str:
        """One line: verified and what that covered, or the failing checks with their details."""
        if self.ok:
            n = len(self.warnings)
            warned = f" ({n} warning{'s' if n > 1 else ''})" if n else ""
            of = f"the ledger record of {self.name}/{self.version}"
            return f"{self.target}: verified against {of}: {self.covered()}{warned}"
        return f"{self.target}: NOT verified: " + "; ".join(f"{c.name}: {c.detail}" for c in self.failed)

    def to_json(self) -> dict[str, object]:
        return {
            **self.content.to_json(),
            "target": self.target,
            "scope": "ledger",
            "model": self.name,
            "version": self.version,
            "ok": self.ok,
            "checks": [c.to_json() for c in self.checks],
            "failed": [c.name for c in self.failed],
            "unchecked": [c.name for c in self.unchecked],
            "signed_by": self.signed_by,
            "ledger_status": self.ledger_status,
            "summary": self.covered(),
        }


def _status(record: ModelVersion) -> Check:
    if record.status == REVOKED:
        reason = record.revocation.reason if record.revocation else ""
        return Check(LEDGER_STATUS, False, f"the version is {status_word(REVOKED)} on the ledger: {reason}")
    if record.status == REJECTED:
        by = "; ".join(
            f"{a.msp_id}" + (f": {a.comment}" if a.comment else "") for a in record.approvals if a.decision == REJECTED
        )
        rejected = f"the version is {status_word(REJECTED)} on the ledger"
        return Check(LEDGER_STATUS, False, rejected + (f" by {by}" if by else ""))
    if record.status not in USABLE_STATUSES:
        return Check(
            LEDGER_STATUS,
            False,
            f"the version's status on the ledger is {status_word(record.status) if record.status else '(none)'}, "
            f"not one of {', '.join(status_word(s) for s in USABLE_STATUSES)}",
        )
    return Check(LEDGER_STATUS, True, f"{status_word(record.status)} on the ledger (neither revoked nor rejected)")


def _record_digests(record: ModelVersion) -> tuple[Check, Manifest | None]:
    try:
        m = ledger_manifest(record=record)
    except ModelTreeError as exc:
        return Check(LEDGER_MANIFEST, False, f"the record's manifest is not valid: {exc}"), None
    wrong = [
        f"{field} {have} is not its manifest's {want}"
        for field, have, want in (
            ("modelDigest", record.model_digest, m.model_digest),
            ("manifestDigest", record.manifest_digest, m.manifest_digest),
        )
        if have != want
    ]
    if wrong:
        return Check(LEDGER_MANIFEST, False, "; ".join(wrong)), m
    return Check(LEDGER_MANIFEST, True, f"{len(m.files)} files, model digest {m.model_digest}"), m


def _bytes(report: VerifyReport) -> Check:
    if report.ok:
        return Check(BYTES, True, f"{report.covered()} the ledger's manifest; {report.lock()}")
    changed = [p + (f" ({report.reasons[p]})" if p in report.reasons else "") for p in report.changed]
    labelled = (
        ("changed", changed),
        ("missing", report.missing),
        ("extra", report.extra),
        ("unprotected", report.unprotected),
    )
    parts = [f"{label}: {', '.join(paths)}" for label, paths in labelled if paths]
    if report.error:
        parts.insert(0, report.error)
    return Check(BYTES, False, "; ".join(parts))


def _signer_checks(
    statement: SignedStatement | None, why: str, evidence: LedgerEvidence, manifest: Manifest | None
) -> list[Check]:
    record = evidence.record
    if statement is None:
        not_made = "not made: there is no verified signature to check"
        return [
            Check(SIGNATURE, False, why),
            Check(SIGNER_CHAIN, None, not_made),
            Check(SIGNER_IDENTITY, None, not_made),
            Check(SIGNED_DIGEST, None, not_made),
        ]
    cert = statement.certificate
    signer = f"{describe(cert)}, role {statement.signer.role or '(none)'}"
    checks = [Check(SIGNATURE, True, f"model-signing verifies the bundle signed by {signer}")]
    registrant = record.registrant
    if evidence.registrant_msp is None:
        checks.append(
            Check(SIGNER_CHAIN, False, f"the registrant's organisation {registrant.msp_id}: {evidence.msp_error}")
        )
    else:
        try:
            chain = evidence.registrant_msp.chain(cert)
            checks.append(
                Check(
                    SIGNER_CHAIN,
                    True,
                    f"the signer is an identity of {registrant.msp_id} (chains to "
                    f"{chain[-1].subject.rfc4514_string()} of the channel configuration)",
                )
            )
        except MspError as exc:
            checks.append(Check(SIGNER_CHAIN, False, f"not an identity of the registrant's {registrant.msp_id}: {exc}"))
    if statement.signer.cert_fingerprint == registrant.cert_fingerprint and statement.signer.role == registrant.role:
        checks.append(Check(SIGNER_IDENTITY, True, f"signed by the registrant {signer}"))
    else:
        checks.append(
            Check(
                SIGNER_IDENTITY,
                False,
                f"signed by {signer}, not by the registrant {registrant.role}@{registrant.msp_id} "
                f"(certificate sha256 {registrant.cert_fingerprint})",
            )
        )
    wrong = []
    if statement.root_digest != record.model_digest:
        wrong.append(f"it signs model digest {statement.root_digest}, the ledger records {record.model_digest}")
    if manifest is not None:
        listed = dict(statement.files)
        want = {f.path: f.sha256 for f in manifest.files}
        differ = sorted(p for p in listed.keys() | want.keys() if listed.get(p) != want.get(p))
        if differ:
            more = f" (and {len(differ) - 10} more)" if len(differ) > 10 else ""
            wrong.append(f"the files it lists differ from the ledger's manifest: {', '.join(differ[:10])}{more}")
    checks.append(
        Check(SIGNED_DIGEST, False, "; ".join(wrong))
        if wrong
        else Check(SIGNED_DIGEST, True, f"signs the ledger's model digest {record.model_digest} and its files")
    )
    return checks


def verify_version(
    evidence: LedgerEvidence,
    bundle: bytes | None,
    content: Callable[[Manifest], VerifyReport],
    target: str,
    no_bundle: str = "no signature bundle was given",
) -> Verification:
    """Verifies bytes and signature against a ledger record: the one definition of "verified".

    Args:
        evidence: The ledger record and the registrant organisation's MSP (:func:`ledger_evidence`).
        bundle: The signature bundle (e.g. :func:`anchored_bundle`), None if there is none.
        no_bundle: Why there is none (reported by the ``signature`` check).
        content: Compares the bytes with the ledger's manifest (e.g. ``verify_folder``, ``verify_s3``).
        target: What is verified, for messages.
    """
    record = evidence.record
    status = _status(record)
    digests, manifest = _record_digests(record)
    report = content(manifest) if manifest is not None else VerifyReport(error="the ledger's manifest is not valid")
    statement: SignedStatement | None = None
    why = no_bundle if bundle is None else ""
    if bundle is not None:
        try:
            statement = open_bundle(bundle)
        except SignatureError as exc:
            why = str(exc)
    signer_checks = _signer_checks(statement, why, evidence, manifest)
    signed_by = ""
    if statement is not None:
        chain_ok = next(c.ok for c in signer_checks if c.name == SIGNER_CHAIN)
        role = statement.signer.role or "(no role)"
        signed_by = f"{role}@{record.registrant.msp_id}" if chain_ok else describe(statement.certificate)
    checks = [status, digests, _bytes(report), *signer_checks]
    return Verification(target, record.name, record.version, checks, report, signed_by, record.status)
