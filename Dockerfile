# Multi-stage build of the mcps binary: compiled in the Rust image, run in Debian slim as a
# user of its own. tests/suite/dockerfile.rs runs this file's build steps outside Docker.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY askama.toml ./
# A workspace member: cargo needs its manifest to load the workspace.
COPY fuzz/Cargo.toml ./fuzz/Cargo.toml
COPY fuzz/fuzz_targets ./fuzz/fuzz_targets
RUN cargo build --release --locked --bin mcps

FROM debian:bookworm-slim
# Node and npm for npx upstreams (the reference server); the registry and uploads live in
# /app/data, a volume owned by the unprivileged user.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates nodejs npm \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /app mcps \
    && mkdir /app/data \
    && chown mcps:mcps /app/data
WORKDIR /app
COPY --from=build /src/target/release/mcps /usr/local/bin/mcps
COPY docker/proxy.yaml /app/proxy.yaml
USER mcps
ENV HOST=0.0.0.0 PORT=8000
VOLUME ["/app/data"]
EXPOSE 8000
# Healthy while the gateway answers /api/v1/system/health (a failed upstream leaves it
# degraded, not unhealthy: restarting the gateway would not bring that upstream back).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["mcps", "health", "-c", "/app/proxy.yaml"]
CMD ["mcps", "serve", "-c", "/app/proxy.yaml"]
