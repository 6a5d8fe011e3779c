"""``StorageMetaRecorder``: the meta-training callback that records a run in storage, for the status page.

The learned-optimizer layer never touches the database (it reports through ``MetaCallback``); this callback,
in the service layer, turns each report into repository calls: one write per outer step (its meta-loss
point), one per checkpoint (the weights, loadable with ``LearnedWeights.from_bytes``), and on a resume the
deletion of everything recorded after the checkpoint it resumes from, so no step is stored twice.

Both the service's meta-training jobs (``optforge.service.meta_jobs``, with ``worker``: every write then
also renews the job's lease and fails with ``LeaseLost`` once another worker holds it or the run was
cancelled) and ``optforge meta-train --database-url`` (no lease) use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optforge.service.driver import transient
from optforge.spec import MetaLossPoint
from optforge.storage.database import Storage
from optforge.storage.repo import learned as learned_repo

if TYPE_CHECKING:  # the weights type only: the service imports torch where meta-training runs, not here
    from optforge.learned_opt.meta.spec import MetaTrainSpec
    from optforge.learned_opt.weights import LearnedWeights

# How the weights' bytes are written (LearnedWeights.to_bytes: torch.save of tensors and plain values).
WEIGHTS_FORMAT = "torch"


class StorageMetaRecorder:
    """A :class:`~optforge.learned_opt.meta.trainer.MetaCallback` writing run ``run_id`` into ``storage``.

    ``worker``: the lease holder's id (service jobs); every write then checks and renews the lease.
    Writes are retried for up to a minute while the database is unreachable.
    """

    def __init__(self, storage: Storage, run_id: int, spec: MetaTrainSpec, *, worker: str | None = None) -> None:
        self.storage = storage
        self.run_id = run_id
        self.spec = spec
        self.worker = worker

    def _renew(self, session: object) -> None:
        if self.worker is not None:
            learned_repo.heartbeat_meta_run(session, run_id=self.run_id, worker=self.worker)

    @transient
    def on_point(self, point: MetaLossPoint) -> None:
        with self.storage.session() as session:
            self._renew(session)
            learned_repo.insert_meta_loss_points(session, run_id=self.run_id, points=[point])

    @transient
    def on_checkpoint(self, step: int, weights: LearnedWeights, metrics: dict[str, float]) -> None:
        data = weights.to_bytes()
        with self.storage.session() as session:
            self._renew(session)
            learned_repo.save_checkpoint(
                session,
                name=self.spec.name,
                weights=data,
                weights_format=WEIGHTS_FORMAT,
                spec=self.spec.model_dump(mode="json"),
                step=step,
                metrics=metrics,
                run_id=self.run_id,
            )

    @transient
    def on_resume(self, step: int) -> None:
        """The run continues after outer ``step``: forget the points and checkpoints recorded past it."""
        with self.storage.session() as session:
            self._renew(session)
            learned_repo.forget_meta_run_after(session, run_id=self.run_id, step=step)

    def start_fresh(self) -> None:
        """The run starts from step 0 (no checkpoint to resume): forget whatever an earlier attempt recorded."""
        self.on_resume(-1)
