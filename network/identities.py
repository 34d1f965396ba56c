"""Enrols every identity the topology needs, through each organisation's CA.

For each organisation: the CA's bootstrap registrar; every node (an MSP plus a
TLS certificate); one user per role, whose certificate carries the ecert
attribute ``modelledger.role``. The orderer organisation gets only an
``admin`` user. Every ``admin`` also has a TLS client certificate, for
``osnadmin`` and for the nodes' operations endpoints.
Already-enrolled identities are left untouched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from functools import partial
from pathlib import Path

from modelledger.network.binaries import FabricBinaries
from modelledger.network.ca import CAClient, role_attrs, write_org_msp
from modelledger.network.layout import NetworkLayout, NodeTLS
from modelledger.network.topology import Organization, Topology


def node_hosts(org: Organization, node_name: str, host: str) -> list[str]:
    """Names a node's TLS certificate is valid for."""
    return list(dict.fromkeys([host, f"{node_name}.{org.domain}", "localhost", "127.0.0.1"]))


def org_roles(topo: Topology, org: Organization) -> tuple[str, ...]:
    """The role users enrolled for ``org``."""
    return topo.roles if org.type == "application" else ("admin",)


# Enrolments at once. Each is a few fabric-ca-client runs waiting on a CA's bcrypt and signing: on two cores,
# four at a time took the three organisations' 18 identities from ~6-12 s one after another to about half
# (measured before the evaluator role; the default topology now has 20: OrdererOrg's 3 orderers and its admin,
# and each of the 2 application organisations' peer and 7 role users, after the 3 CAs' registrars).
ENROLL_WORKERS = 4


def _enrol(
    client: CAClient,
    name: str,
    id_type: str,
    attrs: dict[str, str],
    msp: Path,
    tls: NodeTLS,
    tls_hosts: list[str] | None,
) -> None:
    """Registers one identity, enrols its signing certificate and, given ``tls_hosts``, a TLS certificate."""
    secret = client.register(name, id_type, attrs)
    client.enroll_identity(name, secret, msp)
    if tls_hosts is not None:
        client.enroll_tls(name, secret, tls.cert, tls.key, tls.ca, tls_hosts)


def _identity_tasks(
    topo: Topology, org: Organization, layout: NetworkLayout, client: CAClient
) -> list[tuple[str, Callable[[], None]]]:
    """The identities of ``org`` not enrolled yet, each with the steps that enrol it (in the topology's order)."""
    tasks: list[tuple[str, Callable[[], None]]] = []
    for node in org.nodes:
        msp = layout.node_msp(node)
        tls = layout.node_tls(node)
        if (msp / "config.yaml").is_file() and tls.cert.is_file():
            continue
        hosts = node_hosts(org, node.name, node.host)
        tasks.append((node.id, partial(_enrol, client, node.name, node.kind, {}, msp, tls, hosts)))

    for role in org_roles(topo, org):
        msp = layout.user_msp(org, role)
        # Admins get a TLS client certificate too: osnadmin and the nodes'
        # operations /metrics endpoint require mutual TLS.
        needs_tls = role == "admin"
        tls = layout.user_tls(org, role)
        if (msp / "config.yaml").is_file() and (not needs_tls or tls.cert.is_file()):
            continue
        id_type = "admin" if role == "admin" else "client"
        hosts = [f"{role}.{org.domain}"] if needs_tls else None
        tasks.append((f"{role}@{org.name}", partial(_enrol, client, role, id_type, role_attrs(role), msp, tls, hosts)))
    return tasks


class _StopOnFailure:
    """Runs enrolment steps on a pool until one fails: after that, a step not begun yet is skipped.

    The failures are kept in the order they happened (worker threads append them).
    """

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.failures: list[tuple[str, BaseException]] = []
        self._lock = threading.Lock()

    def run(self, name: str, step: Callable[[], None]) -> None:
        """Runs ``step`` (enrolling ``name``) unless a step has failed already."""
        if self.stopped.is_set():
            return
        try:
            step()
        except BaseException as exc:
            with self._lock:
                self.failures.append((name, exc))
            # Set before this future is marked failed, so the pool's next pick-up skips its step however
            # late the waiting thread wakes up.
            self.stopped.set()
            raise

    def run_all(self, pool: ThreadPoolExecutor, steps: list[tuple[str, Callable[[], None]]]) -> None:
        """Runs ``steps`` on ``pool`` and returns once all are done or one failed (see :meth:`raise_first`)."""
        futures = [pool.submit(self.run, name, step) for name, step in steps]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        finally:
            pending = [future for future in futures if not future.done()]
            if pending:  # a step failed, or this thread was interrupted
                self.stopped.set()
                for future in pending:
                    future.cancel()

    def raise_first(self) -> None:
        """Raises the first failure as it was raised, naming later ones in its notes; call once the pool is shut."""
        if not self.failures:
            return
        (_, first), *later = self.failures
        for name, exc in later:
            first.add_note(f"enrolling {name} failed too: {exc}")
        raise first


def enroll_organizations(
    topo: Topology, orgs: Sequence[Organization], layout: NetworkLayout, bins: FabricBinaries
) -> dict[str, list[str]]:
    """Enrols everything of ``orgs``, several identities at a time; returns what was newly enrolled, by organisation.

    Each organisation's bootstrap registrar is enrolled first (it registers the
    others); then every identity of every organisation is registered and
    enrolled, up to :data:`ENROLL_WORKERS` at once. Each identity has its own
    client folders, and ``register`` only reads the registrar's.

    When an enrolment fails, no further one starts; those under way finish, and
    the error is raised once they have. Identities enrolled by then keep their
    files, so a second call enrols only what is missing.

    Returns:
        Per organisation, the identities enrolled by this call (node ids, then
        ``role@org``), in the topology's order.

    Raises:
        CommandError: The enrolment that failed first in time, as the CA client raised it (so is any other
            ``NetworkError`` or ``OSError`` of an enrolment); enrolments that failed after it, while
            running already, are named in its notes.
    """
    clients = {org.name: CAClient(org.ca, org, layout, bins) for org in orgs}
    guard = _StopOnFailure()
    tasks: list[tuple[str, str, Callable[[], None]]] = []
    with ThreadPoolExecutor(max_workers=ENROLL_WORKERS, thread_name_prefix="enrol") as pool:
        guard.run_all(pool, [(f"the registrar of {name}", c.enroll_registrar) for name, c in clients.items()])
        if not guard.failures:
            for org in orgs:
                write_org_msp(layout.org_msp(org), layout.ca_cert(org.ca))
            tasks = [
                (org.name, name, step)
                for org in orgs
                for name, step in _identity_tasks(topo, org, layout, clients[org.name])
            ]
            guard.run_all(pool, [(name, step) for _, name, step in tasks])
    # Leaving the pool waited for every enrolment under way.
    guard.raise_first()
    done: dict[str, list[str]] = {org.name: [] for org in orgs}
    for org_name, name, _ in tasks:
        done[org_name].append(name)
    return done
