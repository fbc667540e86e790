#!/usr/bin/env bash
# Prepare this checkout on a fresh Debian/Ubuntu machine: system packages (Java 17 for Kafka and
# Spark, docker-compose to validate the compose file, headless Chromium for the Dagster UI test),
# a virtualenv in .venv, the project with its test dependencies, and the jars EventFlow fetches
# from Maven Central (Apache Kafka, Spark's Kafka connector, the PostgreSQL JDBC driver: ~60 MB,
# once, into ~/.cache/eventflow/maven).
# Safe to run again: it skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."

java_ok() {
  local java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  "$java" -version 2>&1 | grep -Eq 'version "(17|21)[."]'
}

missing=()
java_ok || missing+=(openjdk-17-jre-headless)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v chromium >/dev/null || missing+=(chromium chromium-driver)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
    echo "setup: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! java_ok; then
  echo "setup: Java 17 or 21 is required for Spark (java -version says: $(java -version 2>&1 | head -1))" >&2
  exit 1
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=.venv/.eventflow-setup
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  echo "$want" > "$stamp"
fi
.venv/bin/python -m eventflow_assets.maven >/dev/null
