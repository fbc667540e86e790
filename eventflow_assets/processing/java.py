"""Spark 4 needs a Java 17 or 21 runtime; find it, or say exactly what to install."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from eventflow_assets.errors import EventFlowError

SUPPORTED = (17, 21)
HINT = "install one (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"


def java_binary() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = os.path.join(home, "bin", "java")
        return candidate if os.access(candidate, os.X_OK) else None
    return shutil.which("java")


def check_java() -> int:
    """The major version of the Java that Spark will use; EventFlowError when it cannot run Spark."""
    binary = java_binary()
    if binary is None:
        where = f"JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java" if os.environ.get("JAVA_HOME") \
            else "no `java` on PATH"
        raise EventFlowError(f"Java {' or '.join(map(str, SUPPORTED))} is required for Spark: {where}; {HINT}")
    try:
        out = subprocess.run([binary, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EventFlowError(f"could not run {binary} -version ({exc}); {HINT}") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise EventFlowError(f"could not read the Java version from {binary} -version: {out.strip()[:200]}")
    major = int(match.group(1)) if match.group(1) != "1" else int(match.group(2))
    if major not in SUPPORTED:
        raise EventFlowError(f"Spark 4 needs Java {' or '.join(map(str, SUPPORTED))}, found Java {major} "
                             f"at {binary}; {HINT}")
    return major
