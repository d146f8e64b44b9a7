# syntax=docker/dockerfile:1.7
#
# One image recipe for every OneFlow binary. The build argument PACKAGE picks
# the Cargo package (and binary) to ship:
#
#   docker build --build-arg PACKAGE=oneflow-gateway -t oneflow-gateway .
#   docker build --build-arg PACKAGE=oneflow-auth    --build-arg PORT=50051 -t oneflow-auth .
#
# PACKAGE: oneflow-gateway (8080), oneflow-auth (50051), oneflow-billing (50052),
# oneflow-router (50053), oneflow-mock-provider (8090), oneflow (one process, 8080).
# Whatever the package, the binary lands at /usr/local/bin/oneflow-service, so the
# entrypoint and the health check are the same in every image. The service still
# reports its own name in logs, traces and metrics.
#
# The image holds no configuration and no secret: give it a TOML file with
# ONEFLOW_CONFIG (or --config) and secrets as ONEFLOW__SECTION__KEY variables.

# ---------------------------------------------------------------------------
# The toolchain the workspace is pinned to (rust-version = 1.95).
FROM rust:1.95-bookworm AS builder
ARG PACKAGE=oneflow-gateway
WORKDIR /src

# The whole workspace is needed: Cargo resolves every member, the proto crate
# compiles proto/ and the auth and billing binaries embed migrations/.
COPY . .

# Cache mounts keep the registry and the target directory between builds of
# different packages (BuildKit); the binary is copied out of the cached target
# in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p "${PACKAGE}" --bin "${PACKAGE}" \
    && install -D -m 0755 "target/release/${PACKAGE}" /out/oneflow-service \
    && mkdir -p /out/data

# ---------------------------------------------------------------------------
# glibc, libgcc and CA certificates only: no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG PACKAGE=oneflow-gateway
ARG PORT=8080
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG CREATED=unknown

LABEL org.opencontainers.image.title="${PACKAGE}" \
      org.opencontainers.image.description="OneFlow AI gateway: ${PACKAGE}" \
      org.opencontainers.image.source="https://example.invalid/oneflow" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot" \
      io.oneflow.package="${PACKAGE}"

COPY --from=builder /out/oneflow-service /usr/local/bin/oneflow-service
# The working directory is the only place the process may write when the
# root filesystem is writable at all: SQLite files of the one-process mode
# and of a development auth or billing land here.
COPY --from=builder --chown=65532:65532 /out/data /var/lib/oneflow
WORKDIR /var/lib/oneflow

# distroless "nonroot": uid/gid 65532, no shell, no package manager.
USER 65532:65532
EXPOSE ${PORT}

# The binary probes its own /healthz (http://127.0.0.1:<server.listen port>),
# so the image needs no curl or shell.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/oneflow-service", "health-check"]

ENTRYPOINT ["/usr/local/bin/oneflow-service"]
CMD ["serve"]
