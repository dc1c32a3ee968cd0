#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the pinned real MCP servers and SDK
# clients (from PyPI and npm only), then checks formatting and lints, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

source tests/env.sh

cargo fmt --check
cargo clippy --all-targets -- -D warnings
# The integration tests run the example servers as real processes: build them as binaries
# (`--all-targets` alone builds examples as test harnesses only). Everything is built once,
# with the optional OpenTelemetry export so its test runs too: the default build leaves out
# only that module, and clippy above checks the build without it.
cargo build --examples --features otel
# The examples and the benchmark have no tests of their own (clippy above checks that they
# build): building them again as test harnesses cost the suite a minute.
cargo test --lib --bins --tests --features otel
# The fuzz target, for a bounded time: arbitrary bytes through every JSON-RPC framing the
# gateway parses itself (stdio lines, WebSocket frames, SSE events).
fuzz/run.sh 20
