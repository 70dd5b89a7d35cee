"""A new user's first run: a wrong setting or store is one sentence naming it and what to do; exit 2."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from microfleet import bootstrap
from microfleet.bootstrap import Services, build_services
from microfleet.settings import Settings
from microfleet.store.engine import make_engine
from microfleet.store.migrate import current_revision
from tests.e2e.command import microfleet, microfleet_process

POSTGRES = os.environ.get("MICROFLEET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_HOST = POSTGRES.split("@", 1)[1].rsplit("/", 1)[0]  # 127.0.0.1:5432


def _one_sentence(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_an_unparseable_database_url_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROFLEET_DATABASE_URL", "foo")
    for command in (("admin", "users"), ("serve",)):
        ran = microfleet(*command)
        assert ran.returncode == 2, (command, ran)
        line = _one_sentence(ran.stdout)
        assert "error (configuration_error)" in line and "MICROFLEET_DATABASE_URL" in line
        assert "'foo' is not a database URL" in line and "sqlite:///PATH" in line


def test_an_unparseable_database_url_is_one_sentence_in_its_own_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MICROFLEET_DATABASE_URL", "foo")
    ran = microfleet_process("admin", "users")
    assert ran.returncode == 2, ran.stderr
    assert "MICROFLEET_DATABASE_URL" in _one_sentence(ran.stdout) and not ran.stderr


def test_a_port_that_is_not_a_number_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROFLEET_HTTP_PORT", "notaport")
    for command in (("serve",), ("admin", "users"), ("demo", "--duration-s", "1")):
        ran = microfleet(*command)
        assert ran.returncode == 2, (command, ran)
        line = _one_sentence(ran.stdout)
        assert "error (configuration_error): MICROFLEET_HTTP_PORT='notaport' is not valid" in line
        assert "docs/configuration.md" in line


def test_a_refused_database_says_which_and_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROFLEET_DATABASE_URL", "postgresql+psycopg://mei:s3cret@127.0.0.1:1/microfleet")
    for command in (("admin", "users"), ("db", "upgrade"), ("serve",)):
        ran = microfleet(*command)
        assert ran.returncode == 2, (command, ran)
        line = _one_sentence(ran.stdout)
        assert "error (store_unavailable): cannot open the store at" in line
        assert "postgresql+psycopg://mei:***@127.0.0.1:1/microfleet" in line and "s3cret" not in line
        assert "Connection refused" in line and "start the database or fix MICROFLEET_DATABASE_URL" in line


def test_a_postgresql_database_that_does_not_exist_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"postgresql+psycopg://postgres@{PG_HOST}/microfleet_no_such_database"
    monkeypatch.setenv("MICROFLEET_DATABASE_URL", url)
    ran = microfleet("admin", "users")
    assert ran.returncode == 2
    line = _one_sentence(ran.stdout)
    assert "error (configuration_error): the PostgreSQL database 'microfleet_no_such_database'" in line
    assert "createdb microfleet_no_such_database" in line


def test_rederive_of_an_unknown_vehicle_says_it_does_not_exist(tmp_path: Path) -> None:
    ran = microfleet("rederive", "no-such-car", db=tmp_path / "m.db")
    assert ran.returncode == 2
    assert "error (not_found)" in _one_sentence(ran.stdout) and "no-such-car" in ran.stdout


def test_every_command_migrates_a_never_migrated_store_on_first_use(tmp_path: Path) -> None:
    """The one rule (README, docs/configuration.md): a command that opens a store brings it to the latest
    schema first; ``db upgrade`` does only that."""
    for command in (("admin", "users"), ("places", "list"), ("derive", "--interval-s", "0")):
        db = tmp_path / f"{command[0]}.db"
        create_engine(f"sqlite:///{db}").dispose()  # an empty SQLite file, never migrated
        ran = microfleet(*command, db=db)
        assert ran.returncode == 0, (command, ran)
        engine = make_engine(f"sqlite:///{db}")
        assert current_revision(engine) is not None
        engine.dispose()


def test_a_sqlite_store_in_a_missing_folder_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "no" / "such" / "folder" / "m.db"
    ran = microfleet("db", "upgrade", db=db)
    assert ran.returncode == 2
    line = _one_sentence(ran.stdout)
    assert "error (configuration_error)" in line and "does not exist" in line
    assert "MICROFLEET_DATABASE_URL" in line
    assert not (tmp_path / "no").exists()


def test_the_default_var_folder_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MICROFLEET_DATABASE_URL", raising=False)
    ran = microfleet("db", "upgrade")
    assert ran.returncode == 0, ran
    assert (tmp_path / "var" / "microfleet.db").is_file()


def test_commands_close_the_services_they_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs leave no engine open: each command's pool holds no connection when it returns."""
    built: list[Services] = []

    def recording(settings: Settings, **options: Any) -> Services:
        built.append(build_services(settings, **options))
        return built[-1]

    monkeypatch.setattr(bootstrap, "build_services", recording)
    db = tmp_path / "m.db"
    assert microfleet("admin", "users", db=db).returncode == 0
    assert microfleet("places", "list", db=db).returncode == 0
    assert microfleet("rederive", "x", db=db).returncode == 2  # a refusal closes them too
    assert len(built) == 3
    assert [s.engine.pool.checkedin() for s in built] == [0, 0, 0]
