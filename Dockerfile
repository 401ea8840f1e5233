# syntax=docker/dockerfile:1
# migratebot: `migratebot serve` in a slim, non-root image that runs with a read-only root filesystem.
# Writes go only to /data (mount a volume: the embedded SQLite database lives there unless
# MIGRATEBOT_DATABASE_URL points at PostgreSQL) and /tmp (mount an emptyDir/tmpfs).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
COPY sandbox ./sandbox
# A self-contained venv is the only thing the runtime stage takes: no compilers, no pip cache.
RUN python -m venv /opt/migratebot \
 && /opt/migratebot/bin/pip install --upgrade pip \
 && /opt/migratebot/bin/pip install . \
 && /opt/migratebot/bin/python -m compileall -q /opt/migratebot

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 migratebot \
 && useradd --system --uid 10001 --gid migratebot --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin migratebot \
 && mkdir -p /data && chown 10001:10001 /data
COPY --from=build /opt/migratebot /opt/migratebot
ENV PATH=/opt/migratebot/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MIGRATEBOT_DATA_DIR=/data \
    MIGRATEBOT_HTTP_HOST=0.0.0.0 \
    MIGRATEBOT_HTTP_PORT=3000
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('MIGRATEBOT_HTTP_PORT', '3000'), timeout=2)"]
# Other verbs (db upgrade, audit verify) run with `--entrypoint migratebot IMAGE db upgrade`.
ENTRYPOINT ["migratebot", "serve"]
