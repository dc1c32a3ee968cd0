#!/usr/bin/env bash
# Builds the fuzz target with libFuzzer's coverage instrumentation (fuzz/instrument.sh) and
# runs it for the given number of seconds (default 60). It builds on the stable toolchain and
# shares the test suite's compiled dependencies; with cargo-fuzz and a nightly toolchain,
# `cargo fuzz run framing` works too. An input that fails is kept in fuzz/artifacts/.
#
#   fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
RUSTC_WORKSPACE_WRAPPER="$PWD/fuzz/instrument.sh" \
    cargo build --quiet --locked -p mcps-fuzz --bin framing
# The committed seeds stay as they are; what the run finds goes to a scratch corpus.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p fuzz/artifacts
if ! target/debug/framing -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=1024 \
    -artifact_prefix=fuzz/artifacts/ -print_final_stats=1 "$work" fuzz/corpus/framing \
    2> "$work/log"; then
    cat "$work/log"
    echo "fuzz: the framing target failed; the input is in fuzz/artifacts/" >&2
    exit 1
fi
grep -E '^(Done|stat::(number_of_executed_units|new_units_added|peak_rss_mb))' "$work/log"
