"""Jars from Maven Central, fetched once into a cache outside the checkout, offline afterwards.

Resolution uses Apache Ivy as shipped in the pyspark wheel (``pyspark/jars/ivy-*.jar``), so no
Maven installation is needed. The resolved classpath is written to a manifest in the cache; a
later call whose manifest lists only files that still exist returns it without running Ivy, so
it needs no network. The cache is ``$XDG_CACHE_HOME/eventflow/maven`` (``~/.cache/...``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from xml.sax.saxutils import quoteattr

from eventflow_assets.errors import EventFlowError
from eventflow_assets.processing.java import check_java, java_binary

CENTRAL = "https://repo1.maven.org/maven2"
# name-version, the version starting with digits and a dot: zstd-jni-1.5.6-10, spark-sql-kafka-0-10_2.13-4.2.0
_VERSIONED = re.compile(r"^(.+)-(\d+\.[^-]*(?:-.*)?)$")


class MissingJarsError(EventFlowError):
    """Jars that are not in the cache and could not be downloaded."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "eventflow" / "maven"


def spark_jars_dir() -> Path:
    """The jars folder of the Spark that pyspark runs (``SPARK_HOME`` or the wheel's own)."""
    home = os.environ.get("SPARK_HOME")
    if home and (Path(home) / "jars").is_dir():
        return Path(home) / "jars"
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


def _ivy_jar() -> Path:
    found = sorted(spark_jars_dir().glob("ivy-*.jar"))
    if not found:
        raise MissingJarsError(f"no Apache Ivy jar in {spark_jars_dir()} to download jars with; reinstall pyspark")
    return found[-1]


def _ivy_module(label: str, coordinates: Sequence[str], excludes: Sequence[str]) -> str:
    deps = []
    for coordinate in coordinates:
        group, name, version = coordinate.split(":")
        deps.append(f"    <dependency org={quoteattr(group)} name={quoteattr(name)} rev={quoteattr(version)} "
                    'conf="default->default"/>')
    for pattern in excludes:
        group, _, name = pattern.partition(":")
        deps.append(f"    <exclude org={quoteattr(group)} module={quoteattr(name or '*')}/>")
    return ("<ivy-module version=\"2.0\">\n"
            f"  <info organisation=\"eventflow\" module={quoteattr(label)}/>\n"
            "  <configurations><conf name=\"default\"/></configurations>\n"
            "  <dependencies>\n" + "\n".join(deps) + "\n  </dependencies>\n</ivy-module>\n")


def _failure_reason(output: str) -> str:
    keys = ("UnknownHost", "Connection refused", "timed out", "SERVER ERROR", "NOT FOUND", "unresolved dependency",
            "module not found")
    for line in output.splitlines():
        if any(k in line for k in keys):
            found = line.strip(" :\t")[:300]
            if "not found" in found:  # Ivy says so for an unreachable repository too
                found += " (no network or proxy access to Maven Central, or no such version)"
            return found
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def resolve(label: str, coordinates: Sequence[str], excludes: Sequence[str] = (),
            skip_present_in: Path | None = None) -> list[Path]:
    """Local paths of ``coordinates`` (``group:artifact:version``) and their runtime dependencies.

    ``excludes`` are ``group[:artifact]`` patterns left out of the resolution; jars whose artifact
    name already exists in ``skip_present_in`` (another version included) are dropped from the
    result, so a connector does not put a second copy of Spark's own libraries on its classpath.
    Prints one line per downloaded file on stderr (first use only).
    """
    root = cache_dir()
    key = hashlib.sha256("\n".join([*coordinates, "--", *excludes]).encode()).hexdigest()[:16]
    manifest = root / "classpaths" / f"{label}-{key}.txt"
    cached = _read_manifest(manifest)
    if cached is None:
        manifest.parent.mkdir(parents=True, exist_ok=True)
        with open(root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be resolving the same jars
            cached = _read_manifest(manifest)
            if cached is None:
                cached = _run_ivy(label, coordinates, excludes, root, manifest)
    if skip_present_in is None:
        return cached
    present = {_artifact_name(p.name) for p in skip_present_in.glob("*.jar")}
    return [p for p in cached if _artifact_name(p.name) not in present]


def _read_manifest(manifest: Path) -> list[Path] | None:
    if not manifest.exists():
        return None
    paths = [Path(line) for line in manifest.read_text().splitlines() if line]
    return paths if paths and all(p.exists() for p in paths) else None


def _run_ivy(label: str, coordinates: Sequence[str], excludes: Sequence[str], root: Path,
             manifest: Path) -> list[Path]:
    check_java()
    work = root / "modules"
    work.mkdir(parents=True, exist_ok=True)
    module = work / f"{manifest.stem}.xml"
    module.write_text(_ivy_module(label, coordinates, excludes))
    classpath_file = work / f"{manifest.stem}.classpath"
    print(f"eventflow: fetching {label} jars from Maven Central into {root} (first use only)", file=sys.stderr)
    started = time.monotonic()
    cmd = [java_binary() or "java", "-jar", str(_ivy_jar()), "-ivy", str(module), "-confs", "default",
           "-cache", str(root / "ivy"), "-cachepath", str(classpath_file)]
    output = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    for line in proc.stdout:
        output.append(line)
        if "[SUCCESSFUL ]" in line and "!" in line:  # "[SUCCESSFUL ] org#name;1.0!name.jar (120ms)"
            print(f"  downloaded {line.split('!', 1)[1].split()[0].split('(')[0]}", file=sys.stderr)
    if proc.wait() != 0 or not classpath_file.exists():
        raise MissingJarsError(
            f"cannot fetch {', '.join(coordinates)} from Maven Central ({CENTRAL}): "
            f"{_failure_reason(''.join(output))}; EventFlow needs these jars once, then runs offline from {root}")
    paths = [Path(p) for p in classpath_file.read_text().strip().split(os.pathsep) if p]
    size = sum(p.stat().st_size for p in paths) / 1e6
    manifest.write_text("".join(f"{p}\n" for p in paths))
    print(f"eventflow: {label}: {len(paths)} jars, {size:.0f} MB, in {time.monotonic() - started:.0f} s",
          file=sys.stderr)
    return paths


def _artifact_name(filename: str) -> str:
    """``kafka-clients-3.9.2.jar`` -> ``kafka-clients``: the name without its version."""
    match = _VERSIONED.match(filename.removesuffix(".jar"))
    return match.group(1) if match else filename


def classpath(paths: Iterable[Path]) -> str:
    return os.pathsep.join(str(p) for p in paths)


def fetch_all() -> None:
    """Fetch every jar EventFlow uses (broker, Spark connectors) now, e.g. while setting up a machine."""
    from eventflow_assets.local.kafka_broker import broker_jars
    from eventflow_assets.processing.spark import spark_jars

    print(f"Kafka broker: {len(broker_jars())} jars; Spark connectors: {len(spark_jars())} jars; cache {cache_dir()}")


if __name__ == "__main__":
    try:
        fetch_all()
    except EventFlowError as exc:
        print(f"eventflow: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
