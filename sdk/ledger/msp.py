"""Who an organisation's MSP vouches for, as the channel configuration defines it.

:class:`MspTrust` is one organisation's ``FabricMSPConfig`` from a channel
configuration (root and intermediate CA certificates, CRLs, admins, NodeOUs),
and :meth:`MspTrust.validate` checks a certificate the way Fabric's MSP does
(``msp/mspimplvalidate.go``):

- it chains, signature by signature, to one of the MSP's root certificates
  through its intermediate certificates, every issuer being a CA;
- validity dates are evaluated one second after the certificate's own
  ``notBefore`` (Fabric's rule: a signature carries no trusted time, so an
  expired certificate still identifies who signed while it was valid);
- the certificate is not itself a CA, and no CRL of the MSP signed by its
  issuer lists its serial number;
- with NodeOUs enabled, it carries exactly one of the client, peer, admin and
  orderer organisational units.

Not checked: the NodeOU ``certifiersIdentifier`` (which CA of the MSP may
certify each role; ModelLedger's organisations have a single CA) and the
MSP's extra ``organizational_unit_identifiers``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from fabric_protos.msp import msp_config_pb2

from modelledger.sdk.gateway.errors import GatewayError

MAX_CHAIN = 8
_DER = Encoding.DER
ROLES = ("client", "peer", "admin", "orderer")


class MspError(GatewayError):
    """A certificate is not a valid identity of an MSP; the message says why."""


def _certs(blobs: list[bytes], what: str, msp_id: str) -> tuple[x509.Certificate, ...]:
    out: list[x509.Certificate] = []
    for blob in blobs:
        try:
            out.extend(x509.load_pem_x509_certificates(blob))
        except ValueError as exc:
            raise MspError(f"{msp_id}: a {what} certificate of the channel configuration is not PEM: {exc}") from exc
    return tuple(out)


def fingerprint(cert: x509.Certificate) -> str:
    """The certificate's SHA-256 fingerprint (hex), as the registry records it."""
    return cert.fingerprint(hashes.SHA256()).hex()


def describe(cert: x509.Certificate) -> str:
    """Subject and short fingerprint, for messages."""
    return f"{cert.subject.rfc4514_string()} (sha256 {fingerprint(cert)})"


@dataclass(frozen=True)
class MspTrust:
    """One organisation's MSP from the channel configuration."""

    msp_id: str
    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    admins: tuple[bytes, ...] = ()
    node_ous: tuple[tuple[str, str], ...] = ()  # (role, OU) pairs; empty when NodeOUs are off

    @classmethod
    def from_config(cls, msp_id: str, config: msp_config_pb2.FabricMSPConfig) -> MspTrust:
        """Builds the trust of one MSP from its ``FabricMSPConfig``.

        Raises:
            MspError: A certificate or CRL of the configuration cannot be read.
        """
        crls = []
        for blob in config.revocation_list:
            try:
                crls.append(x509.load_pem_x509_crl(blob))
            except ValueError as exc:
                raise MspError(f"{msp_id}: a CRL of the channel configuration is not PEM: {exc}") from exc
        admins = tuple(c.public_bytes(_DER) for c in _certs(list(config.admins), "admin", msp_id))
        ous: list[tuple[str, str]] = []
        n = config.fabric_node_ous
        if n.enable:
            for role in ROLES:
                ident = getattr(n, f"{role}_ou_identifier")
                if ident.organizational_unit_identifier:
                    ous.append((role, ident.organizational_unit_identifier))
        return cls(
            msp_id,
            _certs(list(config.root_certs), "root", msp_id),
            _certs(list(config.intermediate_certs), "intermediate", msp_id),
            tuple(crls),
            admins,
            tuple(ous),
        )

    def _issuer_of(self, cert: x509.Certificate, at: dt.datetime) -> x509.Certificate | None:
        for candidate in (*self.intermediates, *self.roots):
            if candidate.subject != cert.issuer:
                continue
            try:
                cert.verify_directly_issued_by(candidate)
            except (ValueError, TypeError, InvalidSignature):
                continue
            if not _is_ca(candidate) or not candidate.not_valid_before_utc <= at <= candidate.not_valid_after_utc:
                continue
            return candidate
        return None

    def chain(self, cert: x509.Certificate) -> list[x509.Certificate]:
        """The certificate's chain up to a root of this MSP (leaf first), checked as Fabric's MSP does.

        Raises:
            MspError: The certificate is not a valid identity of this MSP; the message says why.
        """
        who = describe(cert)
        if _is_ca(cert):
            raise MspError(f"{who} is a CA certificate, not an identity of {self.msp_id}")
        at = cert.not_valid_before_utc + dt.timedelta(seconds=1)
        if at > cert.not_valid_after_utc:
            raise MspError(f"{who} was never valid")
        chain = [cert]
        while not any(chain[-1] == root for root in self.roots):
            if len(chain) > MAX_CHAIN:
                raise MspError(f"{who}: no chain of at most {MAX_CHAIN} certificates to a root of {self.msp_id}")
            issuer = self._issuer_of(chain[-1], at)
            if issuer is None:
                raise MspError(
                    f"{who} does not chain to a root certificate of {self.msp_id} "
                    f"(no CA of the MSP issued {chain[-1].subject.rfc4514_string()})"
                )
            chain.append(issuer)
        for child, issuer in itertools.pairwise(chain):
            for crl in self.crls:
                if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
                    continue
                if crl.get_revoked_certificate_by_serial_number(child.serial_number) is not None:
                    raise MspError(f"{describe(child)} is revoked by a CRL of {self.msp_id}")
        if self.node_ous and len(self._node_roles(cert)) != 1:
            names = ", ".join(ou for _, ou in self.node_ous)
            raise MspError(f"{who} must carry exactly one of the organisational units {names} of {self.msp_id}")
        return chain

    def roles(self, cert: x509.Certificate) -> set[str]:
        """The MSP roles the certificate's organisational units (and the admins list) give it, plus ``member``."""
        roles = self._node_roles(cert)
        if cert.public_bytes(_DER) in self.admins:
            roles.add("admin")
        return roles | {"member"}

    def _node_roles(self, cert: x509.Certificate) -> set[str]:
        ous = {a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)}
        return {role for role, ou in self.node_ous if ou in ous}


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False
