"""Two organizations, two Ray clusters on one machine: the hub (`mesh up` with federation on:
its own Ray cluster, Serve applications and orchestrator) and the agricultural institute's node
(`mesh node`: its own Ray cluster on another GCS port, its own Serve application). Identities
come from the real commands. Shown: the partner's expert answers through the hub; the node
SIGKILLed under bounded load (no request past its deadline, failures only in the kill window,
recovery after restart); the hub's orchestrator restarted with its registry intact; and the
cross-organization hop measured next to a local one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh.proto.v1 import orchestrator_pb2
from tests.integration.test_federation_two_orgs import (
    AGRI,
    TwoOrgs,
    kill_and_restart_under_load,
    measure_hop,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def orgs(loopback_only_network: None, demo_artifacts: Path,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoOrgs]:
    root = tmp_path_factory.mktemp("two-orgs-ray")
    env = {**os.environ, "MESH_DEMO_ARTIFACTS": str(demo_artifacts)}
    env.pop("MESH_STATE_DIR", None)
    o = TwoOrgs(root, env, ray=True)
    try:
        o.setup()
        o.start_hub()
        o.start_node()
        yield o
    finally:
        o.close()


def test_partner_on_its_own_ray_cluster_answers_through_the_hub(orgs: TwoOrgs) -> None:
    orgs.wait_partner_answers(240)
    listed = {e.card.name: (e.card.organization, e.status)
              for e in orgs.stub().ListExperts(orchestrator_pb2.ListExpertsRequest(),
                                               timeout=10).experts}
    assert listed["crop-yield"] == (AGRI, "HEALTHY")
    assert listed["breast-cancer"][1] == "HEALTHY"


def test_cross_organization_hop_cost_on_ray(orgs: TwoOrgs) -> None:
    orgs.wait_partner_answers(240)
    print("hop cost (Ray Serve on both sides):", measure_hop(orgs))


def test_node_killed_under_load_then_restarted(orgs: TwoOrgs) -> None:
    orgs.wait_partner_answers(240)
    # The restarted node rejoins its running Ray cluster and redeploys (a no-op).
    print("kill/restart:", kill_and_restart_under_load(orgs, recover_within_s=120))


def test_hub_restart_keeps_the_registry(orgs: TwoOrgs) -> None:
    orgs.wait_partner_answers(240)
    orgs.stop_hub()
    orgs.start_hub()
    listed = {e.card.name: e.card.organization
              for e in orgs.stub().ListExperts(orchestrator_pb2.ListExpertsRequest(),
                                               timeout=10).experts}
    assert listed.get("crop-yield") == AGRI
    assert orgs.wait_partner_answers(20) < 20
