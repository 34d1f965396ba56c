"""The default topology's identities, as network/identities.py's comment on ENROLL_WORKERS counts them."""

from __future__ import annotations

from pathlib import Path

from modelledger.network.identities import org_roles
from modelledger.network.topology import load_topology

TOPOLOGY = Path(__file__).resolve().parents[2] / "network" / "topology.yaml"


def test_the_default_topology_enrols_20_identities_besides_the_registrars() -> None:
    topo = load_topology(TOPOLOGY)
    orgs = (*topo.orderer_orgs, *topo.application_orgs)
    per_org = {o.name: (len(o.nodes), len(org_roles(topo, o))) for o in orgs}
    assert per_org == {"OrdererOrg": (3, 1), "Org1": (1, 7), "Org2": (1, 7)}  # the orderer org enrols its admin only
    assert sum(n + r for n, r in per_org.values()) == 20
