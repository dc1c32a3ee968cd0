#!/usr/bin/env bash
# Regenerates the conformance table of docs/interop.md: the conformance suite against each
# fixture (rmcp, TypeScript SDK, Python SDK) directly and through the gateway in each upstream
# era. A few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/env.sh
cargo build --examples --features otel
cargo test --features otel --test suite -- --ignored --exact conformance::write_the_interop_table
