"""What a chaincode deployment decides before it acts, and the record it keeps.

Pure decisions, no Fabric call: :func:`plan_deployment` picks the definition
(sequence, version, source) that ``deploy`` or ``upgrade`` aims at from what
is committed, what the local :class:`DeploymentRecord` says and the source
now; :func:`settings_joins` picks the organisations the deployment makes join
the chaincode's approval set. :mod:`modelledger.network.chaincode_deployment`
carries them out.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from modelledger.network.errors import ChaincodeError
from modelledger.runtime.private_files import write_private_file


# ---------------------------------------------------------------------- settings
def settings_joins(settings: dict[str, Any], msp_ids: list[str], deployment_tx_id: str) -> list[str]:
    """The organisations the deployment makes join the approval set, each through its own admin.

    Args:
        settings: The ledger's settings (``GetSettings``; ``{}`` or without
            ``lastChange`` while unset).
        msp_ids: The topology's application organisations.
        deployment_tx_id: The transaction of the last settings change the
            deployment made ("" if none).

    Returns:
        The MSP ids of ``msp_ids`` missing from the approval set, in order,
        while the settings are unset or were last changed by the deployment
        itself; nothing once anyone else changed them (then they are the
        organisations' admins' to change).
    """
    last = (settings.get("lastChange") or {}).get("txId", "")
    if last and last != deployment_tx_id:
        return []
    present = set(settings.get("approvalOrgs") or [])
    return [msp for msp in msp_ids if msp not in present]


# ---------------------------------------------------------------------- deployment record
@dataclass
class DeploymentRecord:
    """What ``deploy`` last committed, kept in the state folder."""

    name: str
    version: str
    sequence: int
    source_digest: str
    binary: str
    package_ids: dict[str, str]
    # The transaction of the last settings change the deployment made (see ``settings_joins``).
    settings_tx_id: str = ""

    @classmethod
    def load(cls, path: Path) -> DeploymentRecord | None:
        """Reads the record, or None if there is none."""
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            raise ChaincodeError(f"{path} is not a valid deployment record: {exc}") from exc

    def save(self, path: Path) -> None:
        """Writes the record atomically (0600)."""
        write_private_file(path, json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")


@dataclass(frozen=True)
class DeploymentPlan:
    """Which definition ``deploy`` or ``upgrade`` aims at, and from which source."""

    sequence: int
    version: str
    source_digest: str
    warnings: tuple[str, ...] = ()


def definition_version(sequence: int, digest: str) -> str:
    """The version string of a definition: ``<sequence>-<first 12 hex of the source digest>``."""
    return f"{sequence}-{digest[:12]}"


def plan_deployment(
    committed: dict[str, Any] | None,
    record: DeploymentRecord | None,
    current_digest: str,
    msp_ids: list[str],
    upgrade: bool,
) -> DeploymentPlan:
    """Decides the target definition from what is committed, what was recorded and the source.

    Args:
        committed: ``querycommitted`` output, or None if nothing is committed.
        record: The local deployment record, if any.
        current_digest: Digest of the chaincode source now.
        msp_ids: The application organisations of the topology.
        upgrade: Move to the next sequence with the current source.

    Raises:
        ChaincodeError: Deploying would run code or an endorsement policy other than the
            committed one; the message says to upgrade instead.
    """
    if committed is None or upgrade:
        sequence = int(committed["sequence"]) + 1 if committed else 1
        return DeploymentPlan(sequence, definition_version(sequence, current_digest), current_digest)

    sequence = int(committed["sequence"])
    version = str(committed["version"])
    members = sorted(committed.get("approvals", {}))
    if members and members != sorted(msp_ids):
        raise ChaincodeError(
            f"the committed definition of sequence {sequence} is endorsed by {members} but the topology has "
            f"{sorted(msp_ids)}; run `make upgrade-chaincode` to commit a definition for the new organisations"
        )
    if record is not None and record.sequence == sequence and record.version == version:
        warnings: tuple[str, ...] = ()
        if record.source_digest != current_digest:
            warnings = (
                f"chaincode/ changed since version {version} was deployed; "
                "run `make upgrade-chaincode` to deploy the change",
            )
        return DeploymentPlan(sequence, version, record.source_digest, warnings)
    # No record of this definition (state folder lost it, or a crash came before the commit):
    # the committed version names the digest prefix of the source it was made from.
    committed_prefix = version.partition("-")[2]
    if committed_prefix != current_digest[:12]:
        raise ChaincodeError(
            f"committed version {version} was built from other sources than chaincode/ now "
            f"({current_digest[:12]}) and no local record of its binary matches; "
            "run `make upgrade-chaincode` to deploy the current source as the next version"
        )
    return DeploymentPlan(sequence, version, current_digest)
