"""Fabric CA servers (one per organisation) and enrolment of identities.

Every organisation gets its own ``fabric-ca-server`` with TLS on its API and
operations endpoints. The CA signs both the enrolment certificates and the
TLS certificates (``--enrollment.profile tls``), so the org's CA certificate is
also its TLS root. Secrets are generated, kept in mode-0600 files under the
runtime folder, and never logged.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from modelledger.network.binaries import FabricBinaries
from modelledger.network.errors import CommandError, NetworkError
from modelledger.network.layout import NetworkLayout
from modelledger.network.topology import CA, ROLE_ATTRIBUTE, Organization
from modelledger.runtime.private_files import (
    make_private_dir,
    read_or_create_secret,
    write_if_changed,
    write_private_file,
)
from modelledger.runtime.processes import ProcessInfo, ProcessSupervisor
from modelledger.runtime.tls import issue_tls_certificate, tls_context

BOOTSTRAP_ADMIN = "ca-admin"


def _hosts_for(host: str, extra: tuple[str, ...] = ()) -> list[str]:
    hosts = [host, "localhost", "127.0.0.1", *extra]
    return list(dict.fromkeys(hosts))


def _load_ca_key(home: Path, ca_cert: x509.Certificate) -> ec.EllipticCurvePrivateKey:
    """Finds the CA's private key in the server's keystore by matching the public key."""
    want = ca_cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for f in sorted((home / "msp" / "keystore").glob("*_sk")):
        try:
            key = serialization.load_pem_private_key(f.read_bytes(), password=None)
        except ValueError:
            continue
        pub = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if pub == want and isinstance(key, ec.EllipticCurvePrivateKey):
            return key
    raise NetworkError(f"the CA key matching {home / 'ca-cert.pem'} is not in its keystore")


def issue_server_tls(home: Path, cert_path: Path, key_path: Path, hosts: list[str]) -> None:
    """Signs a TLS server certificate for the CA server itself with the CA key."""
    ca_cert = x509.load_pem_x509_certificate((home / "ca-cert.pem").read_bytes())
    issue_tls_certificate(ca_cert, _load_ca_key(home, ca_cert), cert_path, key_path, hosts)


class CAServer:
    """One organisation's fabric-ca-server: initialise, start, check health."""

    def __init__(self, ca: CA, org: Organization, layout: NetworkLayout, bins: FabricBinaries) -> None:
        self.ca = ca
        self.org = org
        self.layout = layout
        self.bins = bins
        self.home = layout.ca_home(ca)

    @property
    def initialized(self) -> bool:
        """True once the CA key, certificate and TLS certificate exist."""
        tls = self.layout.ca_tls(self.ca)
        return self.layout.ca_cert(self.ca).is_file() and tls.cert.is_file() and tls.key.is_file()

    def initialize(self) -> None:
        """Creates the CA (key, root certificate, bootstrap registrar) if not done yet."""
        if self.initialized:
            return
        secret = read_or_create_secret(self.layout.secret_file(self.org.name, BOOTSTRAP_ADMIN))
        # The server writes the bootstrap password into fabric-ca-server-config.yaml: it runs with
        # umask 077 (see FabricBinaries.run), so the file is 0600 from its creation, in a 0700 home.
        make_private_dir(self.home)
        if not self.layout.ca_cert(self.ca).is_file():
            self.bins.run(
                "fabric-ca-server",
                [
                    "init",
                    "--home",
                    str(self.home),
                    "--ca.name",
                    self.ca.name,
                    "--csr.cn",
                    f"ca.{self.org.domain}",
                    "--csr.hosts",
                    ",".join(_hosts_for(self.ca.host, (f"ca.{self.org.domain}",))),
                ],
                # Secrets go through the environment, never argv (visible in ps).
                env={"FABRIC_CA_SERVER_BOOT": f"{BOOTSTRAP_ADMIN}:{secret}"},
                secrets=(secret,),
            )
        tls = self.layout.ca_tls(self.ca)
        issue_server_tls(self.home, tls.cert, tls.key, _hosts_for(self.ca.host, (f"ca.{self.org.domain}",)))

    def start(self, sup: ProcessSupervisor) -> ProcessInfo:
        """Starts the server (a no-op if it already runs)."""
        tls = self.layout.ca_tls(self.ca)
        env = {
            "PATH": "/usr/bin:/bin",
            "FABRIC_CA_SERVER_OPERATIONS_LISTENADDRESS": f"{self.ca.host}:{self.ca.operations_port}",
            "FABRIC_CA_SERVER_OPERATIONS_TLS_ENABLED": "true",
            "FABRIC_CA_SERVER_OPERATIONS_TLS_CERT_FILE": str(tls.cert),
            "FABRIC_CA_SERVER_OPERATIONS_TLS_KEY_FILE": str(tls.key),
            "FABRIC_CA_SERVER_METRICS_PROVIDER": "prometheus",
        }
        argv = [
            self.bins.path("fabric-ca-server"),
            "start",
            "--home",
            str(self.home),
            "--address",
            self.ca.host,
            "--port",
            str(self.ca.port),
            "--ca.name",
            self.ca.name,
            "--tls.enabled",
            "--tls.certfile",
            str(tls.cert),
            "--tls.keyfile",
            str(tls.key),
        ]
        return sup.start(self.ca.name, argv, env, cwd=self.home)

    def healthy(self) -> tuple[bool, str]:
        """Checks the CA API and its operations endpoint; see :func:`ca_health`."""
        return ca_health(self.ca, self.layout)


def ca_health(ca: CA, layout: NetworkLayout) -> tuple[bool, str]:
    """Checks a CA's API (``/cainfo``) and its operations ``/healthz``, both over TLS."""
    ctx = tls_context(layout.ca_cert(ca))
    try:
        with urllib.request.urlopen(f"{ca.url}/cainfo", context=ctx, timeout=3) as r:
            info = json.load(r)
        if not info.get("success"):
            return False, f"cainfo answered {info.get('errors')}"
        url = f"https://{ca.host}:{ca.operations_port}/healthz"
        with urllib.request.urlopen(url, context=ctx, timeout=3) as r:
            body = json.load(r)
        return body.get("status") == "OK", str(body.get("status"))
    except (OSError, ValueError) as exc:
        return False, str(getattr(exc, "reason", exc))


class CAClient:
    """Registers and enrols identities with one organisation's CA."""

    def __init__(self, ca: CA, org: Organization, layout: NetworkLayout, bins: FabricBinaries) -> None:
        self.ca = ca
        self.org = org
        self.layout = layout
        self.bins = bins
        self.tls_root = layout.ca_cert(ca)

    def _common(self) -> list[str]:
        return ["--caname", self.ca.name, "--tls.certfiles", str(self.tls_root)]

    def _enroll(self, name: str, secret: str, msp_dir: Path, home: Path, extra: list[str]) -> None:
        url = f"https://{name}:{secret}@{self.ca.host}:{self.ca.port}"
        make_private_dir(home)
        self.bins.run(
            "fabric-ca-client",
            ["enroll", "--home", str(home), "-M", str(msp_dir), *self._common(), *extra],
            env={"FABRIC_CA_CLIENT_URL": url},
            secrets=(secret,),
        )

    def enroll_registrar(self) -> None:
        """Enrols the CA's bootstrap registrar, which registers every other identity."""
        home = self.layout.ca_registrar_home(self.ca)
        if (home / "msp" / "signcerts" / "cert.pem").is_file():
            return
        secret = read_or_create_secret(self.layout.secret_file(self.org.name, BOOTSTRAP_ADMIN))
        self._enroll(BOOTSTRAP_ADMIN, secret, home / "msp", home, [])

    def register(self, name: str, id_type: str, attrs: dict[str, str]) -> str:
        """Registers ``name`` (idempotent) and returns its enrolment secret."""
        secret_path = self.layout.secret_file(self.org.name, name)
        fresh = not secret_path.exists()
        secret = read_or_create_secret(secret_path)
        args = [
            "register",
            "--home",
            str(self.layout.ca_registrar_home(self.ca)),
            "-u",
            self.ca.url,
            "--id.name",
            name,
            "--id.type",
            id_type,
            "--id.maxenrollments",
            "-1",
            *self._common(),
        ]
        if attrs:
            args += ["--id.attrs", ",".join(f"{k}={v}:ecert" for k, v in sorted(attrs.items()))]
        try:
            self.bins.run("fabric-ca-client", args, env={"FABRIC_CA_CLIENT_ID_SECRET": secret}, secrets=(secret,))
        except CommandError as exc:
            # A previous, interrupted run may have registered it already with this secret.
            if fresh or "already registered" not in exc.output:
                raise
        return secret

    def enroll_identity(self, name: str, secret: str, msp_dir: Path) -> None:
        """Enrols an identity's signing certificate into ``msp_dir`` and sets up NodeOUs."""
        if (msp_dir / "signcerts" / "cert.pem").is_file() and (msp_dir / "config.yaml").is_file():
            return
        tmp_home = msp_dir.parent / ".ca-client"
        self._enroll(name, secret, msp_dir, tmp_home, [])
        shutil.rmtree(tmp_home, ignore_errors=True)
        normalize_msp(msp_dir)

    def enroll_tls(self, name: str, secret: str, out_cert: Path, out_key: Path, out_ca: Path, hosts: list[str]) -> None:
        """Enrols a TLS certificate (profile ``tls``) and copies it to fixed file names."""
        if out_cert.is_file() and out_key.is_file():
            return
        work = out_cert.parent / ".tls-enroll"
        shutil.rmtree(work, ignore_errors=True)
        self._enroll(
            name,
            secret,
            work / "msp",
            work,
            ["--enrollment.profile", "tls", "--csr.hosts", ",".join(hosts)],
        )
        keys = sorted((work / "msp" / "keystore").glob("*"))
        if len(keys) != 1:
            raise NetworkError(f"expected one TLS key for {name}, found {len(keys)}")
        write_private_file(out_key, keys[0].read_bytes())
        write_private_file(out_cert, (work / "msp" / "signcerts" / "cert.pem").read_bytes())
        write_private_file(out_ca, self.tls_root.read_bytes())
        shutil.rmtree(work, ignore_errors=True)


NODE_OU_CONFIG = """NodeOUs:
  Enable: true
  ClientOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: client
  PeerOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: peer
  AdminOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: admin
  OrdererOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: orderer
"""


def normalize_msp(msp_dir: Path) -> None:
    """Renames the enrolled CA certificate to ``cacerts/ca.pem`` and writes the NodeOU config."""
    cacerts = sorted((msp_dir / "cacerts").glob("*.pem"))
    if not cacerts:
        raise NetworkError(f"{msp_dir}/cacerts is empty after enrolment")
    if cacerts[0].name != "ca.pem":
        cacerts[0].replace(msp_dir / "cacerts" / "ca.pem")
    write_private_file(msp_dir / "config.yaml", NODE_OU_CONFIG)


def write_org_msp(msp_dir: Path, ca_cert: Path) -> None:
    """Writes an organisation's channel MSP: CA and TLS roots plus the NodeOU config."""
    pem = ca_cert.read_text()
    for sub in ("cacerts", "tlscacerts"):
        write_if_changed(msp_dir / sub / "ca.pem", pem)
    write_if_changed(msp_dir / "config.yaml", NODE_OU_CONFIG)


def role_attrs(role: str) -> dict[str, str]:
    """The ecert attributes a role identity carries."""
    return {ROLE_ATTRIBUTE: role}
