"""Jars from Maven Central: names, and the one clear error when they cannot be fetched."""

import os

import pytest

from eventflow_assets import maven
from eventflow_assets.local.processes import free_port


@pytest.mark.parametrize(("filename", "name"), [
    ("kafka-clients-3.9.2.jar", "kafka-clients"),
    ("zstd-jni-1.5.6-10.jar", "zstd-jni"),
    ("spark-sql-kafka-0-10_2.13-4.2.0.jar", "spark-sql-kafka-0-10_2.13"),
    ("kafka_2.13-4.1.1.jar", "kafka_2.13"),
    ("HdrHistogram-2.2.2.jar", "HdrHistogram"),
])
def test_artifact_name_drops_the_version(filename, name):
    assert maven._artifact_name(filename) == name


def test_unreachable_repository_is_one_error_naming_what_is_missing(tmp_path, monkeypatch):
    # An empty cache and every download sent to a closed local port: nothing can be fetched.
    closed = free_port()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", f"-Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort={closed} "
                                            f"-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort={closed}")
    with pytest.raises(maven.MissingJarsError) as failure:
        maven.resolve("test", ["org.example.none:nothing:1.0"])
    message = str(failure.value)
    assert message.startswith("cannot fetch org.example.none:nothing:1.0 from Maven Central "
                              "(https://repo1.maven.org/maven2): ")
    assert message.endswith(f"EventFlow needs these jars once, then runs offline from {tmp_path / 'cache'}"
                            f"{os.sep}eventflow{os.sep}maven")
    assert "\n" not in message


def test_cached_classpath_is_used_without_a_resolver(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    jar = tmp_path / "a-1.0.jar"
    jar.write_bytes(b"")
    key_manifest = None

    def fake_ivy(label, coordinates, excludes, root, manifest):
        nonlocal key_manifest
        key_manifest = manifest
        manifest.write_text(f"{jar}\n")
        return [jar]

    monkeypatch.setattr(maven, "_run_ivy", fake_ivy)
    assert maven.resolve("x", ["g:a:1.0"]) == [jar]
    monkeypatch.setattr(maven, "_run_ivy", lambda *a: pytest.fail("resolved again"))
    assert maven.resolve("x", ["g:a:1.0"]) == [jar]  # from the manifest, offline
    jar.unlink()  # a file gone from the cache: resolve again rather than hand Spark a missing jar
    with pytest.raises(pytest.fail.Exception):
        maven.resolve("x", ["g:a:1.0"])
    assert key_manifest.parent == tmp_path / "cache" / "eventflow" / "maven" / "classpaths"
