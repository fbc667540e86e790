"""``spark-submit`` command lines for EventFlow's Spark applications (``jobs/*.py``).

The command carries everything the application needs from this side: the master
(EVENTFLOW_SPARK_MASTER, else the local cluster, else ``local[2]``), the connector jars from
EventFlow's cache (``--jars`` ships them to the executors of any cluster), the session defaults
and this interpreter for the driver and the Python workers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyspark

from eventflow_assets.processing.spark import python_conf, resolve_master, session_conf, spark_jars


def _jobs_dir() -> Path:
    """The jobs: inside the package when installed from the wheel (which carries jobs/ there), else
    the repository's top-level jobs/ of a checkout."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "jobs"
    return installed if installed.is_dir() else package.parent / "jobs"


JOBS = _jobs_dir()


def spark_submit() -> str:
    """SPARK_HOME's spark-submit when SPARK_HOME is set, else the pyspark wheel's."""
    home = os.environ.get("SPARK_HOME") or str(Path(pyspark.__file__).parent)
    return str(Path(home) / "bin" / "spark-submit")


def submit_command(script: str, args: list[str], app_name: str, master: str | None = None) -> list[str]:
    """``spark-submit [options] jobs/<script> <args>``; ``master`` defaults as for every EventFlow job."""
    from eventflow_assets.settings import Settings

    settings = Settings.from_env()
    master = resolve_master(settings, master)
    conf = {**session_conf(settings, master), **python_conf()}
    command = [spark_submit(), "--master", master, "--name", app_name, "--jars", ",".join(spark_jars())]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    return [*command, str(JOBS / script), *args]
