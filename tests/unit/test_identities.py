"""Enrolment of the topology's identities, several at a time, against fake CAs (no fabric-ca-client runs).

:class:`FakeCA` stands in for :class:`~modelledger.network.binaries.FabricBinaries`: it answers the
``fabric-ca-client register`` and ``enroll`` runs the real :class:`~modelledger.network.ca.CAClient` makes,
writes the files a real enrolment writes (signcerts, keystore, cacerts), sleeps a little per identity so
enrolments finish out of order, and records when each run started and ended.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest

from modelledger.network import identities
from modelledger.network.binaries import FabricBinaries
from modelledger.network.errors import CommandError
from modelledger.network.identities import enroll_organizations
from modelledger.network.layout import NetworkLayout
from modelledger.network.topology import Topology, load_topology
from modelledger.runtime.settings import DEFAULT_TOPOLOGY

# What the default topology enrols, by organisation, in its own order: nodes first, then roles.
APP_ROLES = ("data_scientist", "registrar", "evaluator", "approver", "operator", "auditor", "admin")
EXPECTED = {
    "OrdererOrg": ["orderer1-OrdererOrg", "orderer2-OrdererOrg", "orderer3-OrdererOrg", "admin@OrdererOrg"],
    "Org1": ["peer0-Org1", *(f"{r}@Org1" for r in APP_ROLES)],
    "Org2": ["peer0-Org2", *(f"{r}@Org2" for r in APP_ROLES)],
}
IN_ORDER = [ident for ids in EXPECTED.values() for ident in ids]
# Identities with a TLS certificate: nodes and admins.
WITH_TLS = {i for i in IN_ORDER if "@" not in i or i.startswith("admin@")}
# The fifth identity submitted: the first of Org1.
FIFTH = IN_ORDER[4]


@dataclass(frozen=True)
class Call:
    """One fabric-ca-client run as the fake saw it."""

    seq: int  # position in the fake's one global order of starts, ends and failures
    ident: str  # e.g. "peer0-Org1", "admin@OrdererOrg", "registrar of Org1" (the CA's bootstrap registrar)
    org: str
    step: str  # "register", "enroll" (signing certificate) or "tls"
    phase: str  # "start", "end" or "fail"


class FakeCA:
    """Every organisation's CA, answering the runs ``CAClient`` makes through ``FabricBinaries.run``.

    Args:
        topo: The topology (to name identities as ``enroll_organizations`` does).
        delays: Seconds each run of an identity takes; others take ``default_delay``.
        failures: ``(identity, step)`` -> the exception that run raises (after its delay).
        registered: The CAs' databases: ``(org, name)`` already registered (shared by a second fake to resume).
    """

    def __init__(
        self,
        topo: Topology,
        delays: dict[str, float] | None = None,
        failures: dict[tuple[str, str], BaseException] | None = None,
        registered: set[tuple[str, str]] | None = None,
        default_delay: float = 0.01,
    ) -> None:
        self.delays = delays or {}
        self.failures = failures or {}
        self.registered = registered if registered is not None else set()
        self.default_delay = default_delay
        self.calls: list[Call] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._org_of_ca = {org.ca.name: org.name for org in topo.organizations}
        self._node_ids = {(org.name, n.name): n.id for org in topo.organizations for n in org.nodes}

    # --- what the code under test calls -------------------------------------------------------------------
    def run(
        self,
        name: str,
        args: list[str],
        env: dict[str, str] | None = None,
        secrets: tuple[str, ...] = (),
        timeout: float = 120.0,
        cwd: Path | None = None,
    ) -> str:
        """Answers one ``fabric-ca-client`` run like ``FabricBinaries.run``: output, or a ``CommandError``."""
        assert name == "fabric-ca-client"
        org = self._org_of_ca[_arg(args, "--caname")]
        if args[0] == "register":
            who, step = _arg(args, "--id.name"), "register"
        else:
            assert args[0] == "enroll"
            who = (env or {})["FABRIC_CA_CLIENT_URL"].split("//", 1)[1].split(":", 1)[0]
            step = "tls" if "--enrollment.profile" in args else "enroll"
        ident = self._ident(org, who)
        with self._lock:
            self._record(ident, org, step, "start")
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delays.get(ident, self.default_delay))
            failure = self.failures.get((ident, step))
            if failure is not None:
                raise failure
            if step == "register":
                with self._lock:
                    if (org, who) in self.registered:
                        raise CommandError(
                            ["/tools/bin/fabric-ca-client", *args],
                            1,
                            f"Error: Response from server: Error Code: 74 - Identity '{who}' is already registered",
                        )
                    self.registered.add((org, who))
            else:
                self._write_msp(Path(_arg(args, "-M")), org)
        except BaseException:
            with self._lock:
                self._record(ident, org, step, "fail")
                self.in_flight -= 1
            raise
        with self._lock:
            self._record(ident, org, step, "end")
            self.in_flight -= 1
        return "ok\n"

    # --- what the tests read ----------------------------------------------------------------------------------
    def steps(self, ident: str, phase: str = "start") -> list[str]:
        """The steps run for ``ident`` (in order), e.g. ``["register", "enroll", "tls"]``."""
        return [c.step for c in self.calls if c.ident == ident and c.phase == phase]

    def finished(self) -> list[str]:
        """Identities whose last step (TLS for nodes and admins, else the signing certificate) ended, in that order."""
        return [
            c.ident
            for c in self.calls
            if c.phase == "end"
            and not c.ident.startswith("registrar of ")
            and c.step == ("tls" if c.ident in WITH_TLS else "enroll")
        ]

    def first(self, ident: str) -> int:
        """When ``ident``'s first run started."""
        return min(c.seq for c in self.calls if c.ident == ident)

    # --- helpers --------------------------------------------------------------------------------------------
    def _ident(self, org: str, who: str) -> str:
        if who == "ca-admin":
            return f"registrar of {org}"
        return self._node_ids.get((org, who), f"{who}@{org}")

    def _record(self, ident: str, org: str, step: str, phase: str) -> None:
        self.calls.append(Call(next(self._seq), ident, org, step, phase))

    @staticmethod
    def _write_msp(msp: Path, org: str) -> None:
        """What a real ``fabric-ca-client enroll -M msp`` leaves: certificate, key and the CA's certificate."""
        for sub, name in (("signcerts", "cert.pem"), ("keystore", "priv_sk"), ("cacerts", f"ca-{org}.pem")):
            (msp / sub).mkdir(parents=True, exist_ok=True)
            (msp / sub / name).write_text(f"fake {sub} of {org}\n")


def _arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


@pytest.fixture
def topo() -> Topology:
    return load_topology(DEFAULT_TOPOLOGY)


@pytest.fixture
def layout(tmp_path: Path, topo: Topology) -> NetworkLayout:
    """A runtime folder whose CAs are initialised (their certificates exist), nothing enrolled yet."""
    layout = NetworkLayout(tmp_path / "network")
    for org in topo.organizations:
        cert = layout.ca_cert(org.ca)
        cert.parent.mkdir(parents=True)
        cert.write_text(f"-----BEGIN CERTIFICATE-----\nfake CA of {org.name}\n-----END CERTIFICATE-----\n")
    return layout


def _shuffled_delays(seed: int) -> dict[str, float]:
    """Per-identity run times from 2 to 36 ms in a shuffled order, so enrolments finish out of submission order."""
    times = [0.002 * (i + 1) for i in range(len(IN_ORDER))]
    random.Random(seed).shuffle(times)
    return dict(zip(IN_ORDER, times, strict=True))


def _enrol(topo: Topology, layout: NetworkLayout, ca: FakeCA) -> dict[str, list[str]]:
    return enroll_organizations(topo, topo.organizations, layout, cast(FabricBinaries, ca))


def _enrolled_files(topo: Topology, layout: NetworkLayout) -> set[str]:
    """Identities whose files say they are enrolled (what a re-run skips)."""
    done = set()
    for org in topo.organizations:
        for node in org.nodes:
            if (layout.node_msp(node) / "config.yaml").is_file() and layout.node_tls(node).cert.is_file():
                done.add(node.id)
        for role in APP_ROLES if org.type == "application" else ("admin",):
            tls_ok = role != "admin" or layout.user_tls(org, role).cert.is_file()
            if (layout.user_msp(org, role) / "config.yaml").is_file() and tls_ok:
                done.add(f"{role}@{org.name}")
    return done


def test_every_identity_is_enrolled_once_and_reported_in_topology_order(topo: Topology, layout: NetworkLayout) -> None:
    ca = FakeCA(topo, delays=_shuffled_delays(seed=14))
    assert _enrol(topo, layout, ca) == EXPECTED
    # The fake really finished them out of order: the report's order is the topology's, not the completion's.
    assert sorted(ca.finished()) == sorted(IN_ORDER)
    assert ca.finished() != IN_ORDER
    for ident in IN_ORDER:
        assert ca.steps(ident) == (["register", "enroll", "tls"] if ident in WITH_TLS else ["register", "enroll"])
        assert ca.steps(ident, "end") == ca.steps(ident)
    for org in topo.organizations:
        assert ca.steps(f"registrar of {org.name}") == ["enroll"]
    assert _enrolled_files(topo, layout) == set(IN_ORDER)
    # Enrolled identities are left alone: a second run asks the CAs for nothing.
    again = FakeCA(topo, registered=ca.registered)
    assert _enrol(topo, layout, again) == {org: [] for org in EXPECTED}
    assert again.calls == []


@pytest.mark.parametrize("workers", [2, 4])
def test_enrolments_run_in_parallel_never_more_than_the_workers(
    topo: Topology, layout: NetworkLayout, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(identities, "ENROLL_WORKERS", workers)
    ca = FakeCA(topo, delays=_shuffled_delays(seed=workers))
    _enrol(topo, layout, ca)
    assert 1 < ca.max_in_flight <= workers
    # Eighteen identities keep every worker busy at some point.
    assert ca.max_in_flight == workers


def test_no_identity_of_an_organisation_starts_before_its_registrar_is_enrolled(
    topo: Topology, layout: NetworkLayout
) -> None:
    # Slow registrars make any early start visible.
    delays = {**_shuffled_delays(seed=3), **{f"registrar of {o.name}": 0.05 for o in topo.organizations}}
    delays["registrar of Org2"] = 0.15
    ca = FakeCA(topo, delays=delays)
    _enrol(topo, layout, ca)
    for org in topo.organizations:
        registrar_done = next(c.seq for c in ca.calls if c.ident == f"registrar of {org.name}" and c.phase == "end")
        first_start = min(c.seq for c in ca.calls if c.org == org.name and c.ident != f"registrar of {org.name}")
        assert registrar_done < first_start, org.name


def _failure(ident: str) -> CommandError:
    return CommandError(
        ["/tools/bin/fabric-ca-client", "enroll", "-M", f"/state/{ident}/msp"],
        1,
        f"Error: Failed to enroll {ident}: POST failure of request: connection reset by peer",
    )


def test_a_failed_enrolment_is_raised_as_is_and_nothing_new_starts_after_it(
    topo: Topology, layout: NetworkLayout
) -> None:
    boom = _failure(FIFTH)
    # The first four take 1.8, 0.27, 0.54 and 0.81 s (three runs each), so the fifth starts at 0.27 s and fails
    # at 0.28 s, while no other worker is about to pick up an identity (the next is free at 0.54 s: a quarter
    # second of margin for a loaded machine): only the failed one's worker is free, and it must start nothing.
    # orderer1 is slowest, so a loop waiting for the futures in submission order would notice the failure late.
    delays = {i: 0.01 for i in IN_ORDER}
    delays.update({IN_ORDER[0]: 0.6, IN_ORDER[1]: 0.09, IN_ORDER[2]: 0.18, IN_ORDER[3]: 0.27, FIFTH: 0.005})
    ca = FakeCA(topo, delays=delays, failures={(FIFTH, "register"): boom})
    threads_before = threading.active_count()
    with pytest.raises(CommandError) as raised:
        _enrol(topo, layout, ca)
    assert raised.value is boom
    failed_at = next(c.seq for c in ca.calls if c.phase == "fail")
    started_after = [i for i in IN_ORDER if any(c.ident == i for c in ca.calls) and ca.first(i) > failed_at]
    assert started_after == []
    never_started = [i for i in IN_ORDER if not ca.steps(i)]
    assert never_started, "some identities should have been left for a re-run"
    # Whatever had started finished before enroll_organizations returned; no thread is left behind.
    assert threading.active_count() == threads_before
    seen = len(ca.calls)
    time.sleep(0.1)
    assert len(ca.calls) == seen
    assert all(ca.steps(i, "start") == ca.steps(i, "end") for i in IN_ORDER if i != FIFTH)


def test_the_first_failure_in_time_is_raised_and_the_later_one_noted(topo: Topology, layout: NetworkLayout) -> None:
    sixth = IN_ORDER[5]
    early, late = _failure(sixth), _failure(FIFTH)
    # The fifth identity fails on its TLS step, well after the sixth failed on its registration.
    ca = FakeCA(
        topo,
        delays={FIFTH: 0.08, sixth: 0.005},
        failures={(FIFTH, "tls"): late, (sixth, "register"): early},
    )
    with pytest.raises(CommandError) as raised:
        _enrol(topo, layout, ca)
    assert raised.value is early
    assert [c.ident for c in ca.calls if c.phase == "fail"] == [sixth, FIFTH]
    assert any(FIFTH in note for note in getattr(early, "__notes__", []))


def test_a_failed_registrar_is_raised_before_any_identity_starts(topo: Topology, layout: NetworkLayout) -> None:
    boom = _failure("the registrar of Org1")
    # The other registrars are done before Org1's fails.
    ca = FakeCA(topo, delays={"registrar of Org1": 0.1}, failures={("registrar of Org1", "enroll"): boom})
    with pytest.raises(CommandError) as raised:
        _enrol(topo, layout, ca)
    assert raised.value is boom
    assert {c.ident for c in ca.calls} == {f"registrar of {o.name}" for o in topo.organizations}
    assert {c.ident for c in ca.calls if c.phase == "end"} == {"registrar of OrdererOrg", "registrar of Org2"}


def test_a_rerun_after_a_failure_enrols_only_what_is_missing(topo: Topology, layout: NetworkLayout) -> None:
    # The fifth identity's TLS enrolment fails: its signing certificate is already in place.
    first = FakeCA(topo, delays={FIFTH: 0.002}, failures={(FIFTH, "tls"): _failure(FIFTH)})
    with pytest.raises(CommandError):
        _enrol(topo, layout, first)
    done_first = set(first.finished())
    assert done_first == _enrolled_files(topo, layout)
    assert FIFTH not in done_first

    # The CAs keep their registrations; the second run resumes.
    second = FakeCA(topo, delays=_shuffled_delays(seed=6), registered=first.registered)
    report = _enrol(topo, layout, second)
    missing = {org: [i for i in ids if i not in done_first] for org, ids in EXPECTED.items()}
    assert report == missing
    assert FIFTH in report["Org1"] and len([i for ids in report.values() for i in ids]) > 1
    assert set(second.finished()) == {i for ids in missing.values() for i in ids}
    assert _enrolled_files(topo, layout) == set(IN_ORDER)
    # Registrars and finished identities are not asked for again; the fifth only gets its TLS certificate
    # (its registration is found already there, with the secret kept from the first run).
    assert not any(c.ident.startswith("registrar of ") for c in second.calls)
    assert not any(c.ident in done_first for c in second.calls)
    assert second.steps(FIFTH) == ["register", "tls"]
    assert second.steps(FIFTH, "fail") == ["register"]
