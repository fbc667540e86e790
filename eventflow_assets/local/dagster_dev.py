"""`dg dev` (webserver + daemon) as a child of `eventflow up`, and how to stop it cleanly.

`dg dev -m eventflow_assets.definitions` loads the one Definitions by module, from wherever the
package is installed (a checkout or a wheel): no project directory is needed. Its code location has
the module's name, as in workspace.yaml and the `dg` project of pyproject.toml, so all of them
share runs and sensor state.

Stopping is ordered, because `dg dev` alone would not stop a running stream: on SIGINT it stops
its webserver and daemon, but its code server stays up while a run executes.
1. SIGINT to `dg dev`: the webserver and the daemon stop, so no sensor relaunches anything;
2. every unfinished run is terminated as the UI's Terminate does (the stream stops after its
   batch in flight, the run ends CANCELED) and awaited;
3. SIGINT, then SIGKILL, to whatever is left in its process group (code servers).

If `up` itself is killed (even with SIGKILL), `dg dev` gets SIGTERM from the kernel but its code
server and run workers would outlive it; a small reaper process, which the kernel also signals,
kills the whole process group then. The next `up` marks the runs left unfinished as canceled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from eventflow_assets.errors import EventFlowError
from eventflow_assets.local.dagster_instance import cancel_leftover_runs, terminate_runs
from eventflow_assets.local.processes import die_with_parent, require_free_port

DEFINITIONS_MODULE = "eventflow_assets.definitions"
HOST = "127.0.0.1"

# Runs as `python -c REAPER <pgid>`: waits, and SIGKILLs the group when the kernel sends
# SIGTERM because `eventflow up` died.
REAPER = """
import os, signal, sys
def reap(*_):
    try:
        os.killpg(int(sys.argv[1]), signal.SIGKILL)
    finally:
        os._exit(0)
signal.signal(signal.SIGTERM, reap)
while True:
    signal.pause()
"""


class DagsterDev:
    def __init__(self, port: int, env: dict[str, str], log_path: Path):
        self.port = port
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.reaper: subprocess.Popen | None = None
        self.failed = False  # set when it died on its own

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def check_port(self) -> None:
        require_free_port(HOST, self.port, "Dagster UI", "stop what uses it or pass --dagster-port")

    def start(self, timeout: float = 120.0) -> None:
        self.check_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dagster_dg_cli.cli", "dev", "-m", DEFINITIONS_MODULE,
                 "--host", HOST, "--port", str(self.port)],
                env=_active_venv(self.env), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, preexec_fn=die_with_parent())
        self.reaper = subprocess.Popen([sys.executable, "-c", REAPER, str(self.proc.pid)], stdin=subprocess.DEVNULL,
                                       preexec_fn=die_with_parent())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EventFlowError(f"`dg dev` exited with status {self.proc.returncode} at start; "
                                     f"see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/server_info", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        self.stop(None)
        raise EventFlowError(f"the Dagster UI did not answer on {self.url} within {timeout:.0f}s; see {self.log_path}")

    def stop(self, instance, runs_timeout: float = 120.0) -> list[str]:
        """Stop Dagster and its runs; returns the ids of runs that had to be killed.

        A KeyboardInterrupt meanwhile (Ctrl-C again) kills what is left at once.
        """
        if self.proc is None:
            return []
        pgid = self.proc.pid  # die_with_parent() made it a process group leader
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(60)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            killed = terminate_runs(instance, runs_timeout) if instance is not None else []
            _stop_group(pgid)
        except KeyboardInterrupt:
            _stop_group(pgid, signals=(signal.SIGKILL,))
            raise
        finally:
            self.proc.wait(5)
            self.proc = None
            self.reaper.kill()
            self.reaper.wait(5)
        if killed:
            cancel_leftover_runs(instance)
        return killed


def _active_venv(env: dict[str, str]) -> dict[str, str]:
    """``env`` with this interpreter's virtualenv as the active one, as `dg` expects of a shell."""
    if sys.prefix == sys.base_prefix:
        return env
    return {**env, "VIRTUAL_ENV": sys.prefix}


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _stop_group(pgid: int, signals=(signal.SIGINT, signal.SIGKILL), timeout: float = 20.0) -> None:
    for sig in signals:
        wait = timeout if sig != signal.SIGKILL else 5.0
        if not _group_alive(pgid):
            return
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
