"""Concurrent writers lose nothing: separate processes writing at once all land, on both backends."""

from __future__ import annotations

import multiprocessing

from storage_helpers import concurrent_writer, config

from optforge.storage import repo

WRITERS = 4


def test_four_processes_writing_500_points_each_store_2000(storage, study, tmp_path):
    with storage.session() as s:
        trial = repo.trials.upsert_trial(s, study_id=study.id, key="shared", config=config())
    url = storage.engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no engine or connection inherited
    barrier = context.Barrier(WRITERS)
    processes = [
        context.Process(
            target=concurrent_writer, args=(url, trial.id, study.id, worker, barrier, str(tmp_path / f"error_{worker}"))
        )
        for worker in range(WRITERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    errors = [p.read_text() for p in sorted(tmp_path.glob("error_*"))]
    assert not errors, "\n".join(errors)
    assert [p.exitcode for p in processes] == [0] * WRITERS

    with storage.session(readonly=True) as s:
        assert repo.metrics.count_metric_points(s, trial_id=trial.id) == 2000
        assert [p.step for p in repo.metrics.get_curve(s, trial_id=trial.id)] == list(range(2000))
        events = repo.events.list_events(s, study_id=study.id, limit=10_000)
    # Every event stored once, with ids 1..100 and no gap: what a resuming stream relies on.
    assert [e.id for e in events] == list(range(1, 101))
    assert sorted((e.data["worker"], e.data["i"]) for e in events) == [
        (w, i) for w in range(WRITERS) for i in range(25)
    ]
