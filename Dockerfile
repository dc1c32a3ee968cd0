# Multi-stage build of the mcps binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY examples ./examples
# A workspace member: cargo needs its manifest to load the workspace.
COPY fuzz/Cargo.toml ./fuzz/Cargo.toml
COPY fuzz/fuzz_targets ./fuzz/fuzz_targets
RUN cargo build --release --locked --bin mcps --example hello_upstream

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates nodejs npm \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /app mcps
WORKDIR /app
COPY --from=build /src/target/release/mcps /usr/local/bin/mcps
COPY --from=build /src/target/release/examples/hello_upstream /usr/local/bin/hello_upstream
COPY docker/proxy.yaml /app/proxy.yaml
USER mcps
ENV HOST=0.0.0.0 PORT=8000
EXPOSE 8000
CMD ["mcps", "serve", "-c", "/app/proxy.yaml"]
