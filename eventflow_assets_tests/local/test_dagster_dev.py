"""`eventflow up`'s Dagster process, `dg dev` (no superseded command): a busy UI port is a clear
error; `kill -9` of `up` leaves no Dagster process behind."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import psutil

from eventflow_assets.local.processes import free_port
from eventflow_assets_tests.helpers import command_lines


def up_env(home) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTFLOW_", "DAGSTER_"))}
    env["EVENTFLOW_HOME"] = str(home)
    return env


def test_dagster_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "eventflow_assets.cli", "up", "--dagster-port", str(port),
                                 "--kafka-port", str(free_port()), "--postgres-port", str(free_port()),
                                 "--dashboard-port", str(free_port())],
                                env=up_env(tmp_path / "home"), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr == (f"eventflow: error: port {port} on 127.0.0.1 is already in use, so the Dagster UI "
                             "cannot start there; stop what uses it or pass --dagster-port\n")
    assert not (tmp_path / "home" / "stack.json").exists()  # nothing was started


def test_kill_9_of_up_takes_dagster_down_too(tmp_path):
    port = free_port()
    up = subprocess.Popen([sys.executable, "-m", "eventflow_assets.cli", "up", "--no-producer", "--no-streaming",
                           "--dagster-port", str(port), "--kafka-port", str(free_port()),
                           "--postgres-port", str(free_port()), "--dashboard-port", str(free_port())],
                          env=up_env(tmp_path / "home"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert up.poll() is None and time.monotonic() < deadline, up.stdout.read()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        children = psutil.Process(up.pid).children(recursive=True)
        commands = [" ".join(c) for c in command_lines(children)]
        assert any("dagster_dg_cli.cli dev" in c for c in commands), commands
        assert any("code-server" in c for c in commands), commands
        assert not any("dagster dev" in c for c in commands), commands
        assert "SupersessionWarning" not in (tmp_path / "home" / "logs" / "dagster.log").read_text()
    finally:
        up.send_signal(signal.SIGKILL)
        up.wait()
    _, alive = psutil.wait_procs(children, timeout=30)
    assert alive == [], [" ".join(c) for c in command_lines(alive)]
