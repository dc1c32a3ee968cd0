#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the pinned real MCP servers and SDK
# clients (from PyPI and npm only), then checks formatting and lints, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step's start, in seconds since the suite began: a slow run shows where its time went.
step() { echo "=== ${SECONDS} s: $*"; }

step "formatting, lints, and the installs meanwhile"
cargo fmt --check
# The lints keep the cores busy while the installs mostly wait on the network. The docs' links
# are checked too (a link to a private item resolves: the private items are documented).
{
    cargo clippy --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings -A rustdoc::private_intra_doc_links" \
        cargo doc --no-deps --document-private-items --quiet
} &
lints=$!
trap 'kill "$lints" 2> /dev/null || true' EXIT
source tests/env.sh
wait "$lints"
trap - EXIT
# The registry's tests run on SQLite and on a real PostgreSQL, started here and stopped on exit;
# the replicas' behind nginx; the console's in Chromium; TLS with an authority of the tests' own.
source tests/tls.sh
source tests/postgres.sh
trap stop_test_postgres EXIT
source tests/nginx.sh
source tests/chromium.sh

step "the examples"
# The integration tests run the example servers as real processes: build them as binaries
# (`--all-targets` alone builds examples as test harnesses only). Everything is built once,
# with the optional OpenTelemetry export so its test runs too: the default build leaves out
# only that module, and clippy above checks the build without it.
cargo build --examples --features otel

step "the tests"
# The examples and the benchmark have no tests of their own (clippy above checks that they
# build): building them again as test harnesses cost the suite a minute.
# Four tests at a time on 2 cores: most of a test's time is spent waiting on the processes it
# runs (SDK clients and servers, the conformance suite, a browser). Two at a time (cargo's
# default here) took 730-800 s; four took 400 s, using 1.3 of the 2 cores.
cargo test --lib --bins --tests --features otel -- --test-threads=4

step "the fuzz target"
# For a bounded time: arbitrary bytes through every JSON-RPC framing the gateway parses
# itself (stdio lines, WebSocket frames, SSE events).
fuzz/run.sh 20
step "done"
