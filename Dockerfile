# syntax=docker/dockerfile:1
#
# cartridge-warp sink image.
#   build:  docker build -t cartridge-warp-sink:0.1.0 .
#   run:    docker run --rm -v $PWD/config.yaml:/etc/warp-sink/config.yaml:ro \
#             -e WARP__DESTINATION__CONNECTION_STRING=postgresql://... -p 9108:9108 cartridge-warp-sink:0.1.0
#
# Two stages: the first builds a wheel of this project plus wheels of its dependencies;
# the second installs them (offline, from those wheels only) into a venv and runs as uid 10001.
# The base is pinned to a patch-level tag; pin it by digest as well in your own registry
# (FROM python:3.11.13-slim-bookworm@sha256:...) if your policy requires it.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# README* is optional at this point (pyproject's readme); the glob keeps the COPY valid either way.
COPY pyproject.toml README* ./
COPY sink/ ./sink/
RUN python -m pip wheel --wheel-dir /wheels .


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="cartridge-warp-sink" \
      org.opencontainers.image.description="Streams Debezium change events from Kafka into PostgreSQL" \
      org.opencontainers.image.licenses="MIT"

ENV VIRTUAL_ENV=/opt/warp-sink \
    PATH=/opt/warp-sink/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The venv has no pip of its own; the base image's pip installs into it, only from /wheels.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv --without-pip /opt/warp-sink \
    && python -m pip --python /opt/warp-sink/bin/python install --no-index \
         --find-links /wheels cartridge-warp-sink \
    && groupadd --system --gid 10001 warp \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
         --home-dir /nonexistent --shell /usr/sbin/nologin warp \
    && mkdir -p /etc/warp-sink \
    && warp-sink --help > /dev/null

WORKDIR /tmp
USER 10001:10001

EXPOSE 9108

# Liveness of the process itself (the same endpoint Kubernetes' livenessProbe uses).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('WARP__OBSERVABILITY__METRICS_PORT', '9108'); sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/healthz' % port, timeout=4).status == 200 else 1)"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["warp-sink"]
CMD ["run", "--config", "/etc/warp-sink/config.yaml"]
