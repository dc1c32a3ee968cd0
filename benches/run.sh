#!/usr/bin/env bash
# The benchmark: builds the gateway and the echo upstream in release mode, then runs every
# scenario and prints markdown tables. Arguments after `--` go to the benchmark
# (`--quick`: fewer calls, to check the benchmark itself).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins --examples
cargo bench --bench gateway -- "$@"
