"""Child-process plumbing shared by the embedded services."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable

from eventflow_assets.errors import EventFlowError

_PR_SET_PDEATHSIG = 1


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def require_free_port(host: str, port: int, what: str, hint: str) -> None:
    if port_in_use(host, port):
        raise EventFlowError(f"port {port} on {host} is already in use, so the {what} cannot start there; {hint}")


def wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def die_with_parent(sig: int = signal.SIGTERM, uid: int | None = None, gid: int | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` that drops to uid/gid, then asks the kernel to send ``sig`` when we die.

    The death signal is cleared by a credential change, so it is set after setuid. It is what
    keeps `kill -9` of `eventflow up` from leaving a broker or a database server behind.
    """

    def _preexec() -> None:
        os.setpgrp()  # Ctrl-C in the terminal reaches us, and we stop children in order.
        if gid is not None:
            os.setgroups([])
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return _preexec


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
