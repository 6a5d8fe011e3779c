"""The service on a real two-node Ray cluster with PostgreSQL: trials go where their resources are.

Everything Ray runs outside the test process: a head (``ray start --head``), a second node offering the
custom resource ``optforge_test_node``, and ``optforge serve`` joining them through ``RAY_ADDRESS``. A study
whose trials ask for that resource must run every trial on the second node, and each stored trial says
which node ran it. This module must not use the session's ``ray_session`` (a Ray inside pytest).
"""

from __future__ import annotations

import collections
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from cluster.ray_cluster import LocalRayCluster
from optforge.client.testing import LocalService
from optforge.spec import StudyStatus, TrialRecord, TrialStatus
from optforge.storage.database import Storage
from optforge.storage.repo import trials as trials_repo
from optforge.testing.postgres import create_database

pytest.importorskip("uvicorn")
pytestmark = [pytest.mark.postgres, pytest.mark.slow]

RESOURCE = "optforge_test_node"
N_TRIALS = 4
# Four tiny trials, one at a time on a node's single CPU: well under a minute on a quiet machine.
STUDY_TIMEOUT_S = 240.0


def spec(name: str, **resources: Any) -> dict[str, Any]:
    return {
        "name": name,
        "task": {"model": {"name": "mlp", "width": 16, "depth": 1}, "data": {"name": "digits"}, "steps": 30,
                 "eval_every": 10, "batch_size": 32},
        # No early stopping: every trial runs to the end, so each one is a placement to check.
        "search": {"n_trials": N_TRIALS, "families": ["adamw", "sgd"], "schedules": ["cosine"], "warm_start": False,
                   "early_stopping": "none", "resources": {"cpu": 1, **resources}},
    }  # fmt: skip


@dataclass
class Deployment:
    cluster: LocalRayCluster
    roles: dict[str, str]  # "head" / "worker" -> Ray node id
    service: LocalService
    database_url: str

    def run(self, study_spec: dict[str, Any]) -> list[TrialRecord]:
        """Submit over HTTP, wait, and read the study's trials from the database (node ids included)."""
        with self.service.client() as client:
            study = client.submit(study_spec)
            study.wait(progress=False, timeout=STUDY_TIMEOUT_S, poll_interval=0.5, raise_on_failure=False)
            assert study.status == StudyStatus.COMPLETED, f"{study.data.error}\n{self.service.log_tail()}"
        storage = Storage.open(self.database_url, migrate=False)
        try:
            with storage.session() as session:
                return trials_repo.list_trials(session, study_id=study.id)
        finally:
            storage.close()

    def per_node(self, trials: list[TrialRecord]) -> collections.Counter[str]:
        """How many trials each node ran, by role ("head", "worker"); unknown ids as themselves."""
        role_of = {node_id: role for role, node_id in self.roles.items()}
        return collections.Counter(role_of.get(t.node_id or "", t.node_id or "unrecorded") for t in trials)


@pytest.fixture(scope="module")
def deployment(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with LocalRayCluster(num_cpus=1) as cluster:
        # 4 units: the node could host four such trials at once if it had the CPUs for them.
        cluster.add_node(num_cpus=1, resources={RESOURCE: 4})
        nodes = cluster.nodes(want=2)
        assert len(nodes) == 2, f"the second node did not join: {nodes}\n{cluster.log_tail()}"
        roles = {("worker" if RESOURCE in n["resources"] else "head"): n["node_id"] for n in nodes}
        assert set(roles) == {"head", "worker"}, nodes
        database_url = create_database(postgres_url, f"multinode_{uuid.uuid4().hex[:12]}")
        service = LocalService(
            data_dir=tmp_path_factory.mktemp("multinode-service"),
            env={**cluster.client_env(), "OPTFORGE_DATABASE_URL": database_url, "OPTFORGE_SCHEDULER_INTERVAL_S": "0.2"},
        )
        with service:
            yield Deployment(cluster, roles, service, database_url)
    assert not cluster.leftover_processes(), "the cluster's processes outlived it"


def test_trials_asking_for_a_custom_resource_run_on_the_node_that_offers_it(deployment: Deployment) -> None:
    trials = deployment.run(spec("custom-resource", custom={RESOURCE: 1}))
    per_node = deployment.per_node(trials)
    print(f"\n[{RESOURCE}: 1] trials per node: {dict(per_node)}  nodes: {deployment.roles}")
    assert len(trials) == N_TRIALS
    assert all(t.status == TrialStatus.COMPLETED for t in trials), [(t.status, t.error) for t in trials]
    assert per_node == {"worker": N_TRIALS}, f"every trial must run on the node offering {RESOURCE}: {per_node}"
    assert all(t.info.get("node_id") == deployment.roles["worker"] for t in trials)


def test_trials_without_a_placement_constraint_record_which_cluster_node_ran_them(deployment: Deployment) -> None:
    trials = deployment.run(spec("anywhere"))
    per_node = deployment.per_node(trials)
    # Where Ray puts unconstrained trials depends on timing; what is fixed is that each says where it ran.
    print(f"\n[no custom resource] trials per node: {dict(per_node)}")
    assert len(trials) == N_TRIALS
    assert set(per_node) <= {"head", "worker"}, f"trials name nodes outside the cluster: {per_node}"
