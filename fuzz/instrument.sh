#!/usr/bin/env bash
# rustc for the workspace's own crates in the fuzz build (RUSTC_WORKSPACE_WRAPPER): adds
# cargo-fuzz's coverage instrumentation (without a sanitizer, so stable rustc takes it). The
# dependencies are compiled as for the tests, so the fuzz build reuses theirs.
rustc="$1"
shift
case " $* " in
*" --crate-name "*)
    exec "$rustc" "$@" --cfg fuzzing -Cpasses=sancov-module \
        -Cllvm-args=-sanitizer-coverage-level=4 \
        -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
        -Cllvm-args=-sanitizer-coverage-pc-table \
        -Cllvm-args=-sanitizer-coverage-trace-compares \
        -Cdebug-assertions -Coverflow-checks
    ;;
*) exec "$rustc" "$@" ;;
esac
