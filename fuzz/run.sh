#!/usr/bin/env bash
# Builds the fuzz target with libFuzzer's coverage instrumentation and runs it for the given
# number of seconds (default 60). The flags are cargo-fuzz's, without a sanitizer, so the
# stable toolchain builds it; with cargo-fuzz installed, `cargo fuzz run framing` works too.
# An input that crashes is kept in fuzz/artifacts/ and the run fails.
#
#   fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cdebug-assertions -Coverflow-checks"
# An explicit target keeps the flags off build scripts and proc macros, as cargo-fuzz does.
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --quiet --locked --profile fuzz --target "$host" --bin framing
# The committed seeds stay as they are; what the run finds goes to a scratch corpus.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p artifacts
if ! "target/$host/fuzz/framing" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=1024 \
    -artifact_prefix=artifacts/ -print_final_stats=1 "$work" corpus/framing 2> "$work/log"; then
    cat "$work/log"
    echo "fuzz: the framing target failed; the input is in fuzz/artifacts/" >&2
    exit 1
fi
grep -E '^(Done|stat::(number_of_executed_units|new_units_added|peak_rss_mb))' "$work/log"
