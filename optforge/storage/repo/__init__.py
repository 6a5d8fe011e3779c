"""Repository functions, one module per resource. Each takes the unit of work from ``Storage.session()``
as its only positional argument and everything else by keyword, and returns ``optforge.spec`` records::

    from optforge.storage import repo

    with storage.session() as s:
        study = repo.studies.create_study(s, spec=spec, owner_id=user.id)
        trial = repo.trials.upsert_trial(s, study_id=study.id, key="t1", config=config)
"""

from optforge.storage.repo import best, events, learned, metrics, studies, trials, users

__all__ = ["best", "events", "learned", "metrics", "studies", "trials", "users"]
