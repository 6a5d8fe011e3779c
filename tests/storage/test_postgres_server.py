"""The throwaway PostgreSQL helper, and Storage across a server restart and an unreachable server."""

from __future__ import annotations

import pytest

from optforge.spec import StudySpec
from optforge.storage import Storage, StorageUnavailable, repo
from optforge.testing.postgres import PostgresServer, PostgresUnavailable, find_bin_dir


@pytest.mark.postgres
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_storage_keeps_data_and_reconnects_after_a_server_restart(postgres_server, mode):
    url = postgres_server.create_database()
    with Storage.open(url) as storage:
        with storage.session() as s:
            study = repo.studies.create_study(s, spec=StudySpec(name="survives"))
        postgres_server.restart(mode=mode)  # every pooled connection is now dead; immediate = a crash
        with storage.session() as s:  # the pool notices and reconnects
            assert repo.studies.get_study(s, study_id=study.id).name == "survives"
            repo.studies.create_study(s, spec=StudySpec(name="after"))
        with storage.session(readonly=True) as s:
            assert repo.studies.count_studies(s) == 2


def test_unreachable_server_raises_storage_unavailable():
    # Port 9 (discard) on loopback: nothing listens there, so the connection is refused at once.
    with Storage.open("postgresql+psycopg://nobody@127.0.0.1:9/none", migrate=False) as storage:
        with pytest.raises(StorageUnavailable, match="does not answer"):
            storage.ping()
        with pytest.raises(StorageUnavailable), storage.session() as s:
            repo.studies.count_studies(s)
    with pytest.raises(StorageUnavailable):
        Storage.open("postgresql+psycopg://nobody@127.0.0.1:9/none")


def test_missing_binaries_say_what_to_install(tmp_path):
    with pytest.raises(PostgresUnavailable, match="install the distribution's 'postgresql' package"):
        PostgresServer(bin_dir=tmp_path)


@pytest.mark.skipif(find_bin_dir() is None, reason="PostgreSQL binaries are not installed")
def test_restart_before_start_tells_how_to_start():
    server = PostgresServer()
    with pytest.raises(RuntimeError, match="start"):
        server.restart()
