#!/usr/bin/env bash
# The gateway's own work per proxied call, counted in instructions: steady where CPU time is
# not (a shared machine's CPU time per call moves by a fifth from one run to the next; the
# count by a few per cent). It counts user-space instructions of the gateway process, every
# thread of it (the call history's SQLite writer too), not the kernel's work for it, and not
# what an instruction costs (a cache miss counts as one).
#
#   benches/instructions.sh [MCPS]    # MCPS: a gateway binary, by default target/release/mcps
#
# Runs that binary under valgrind's callgrind in front of the echo upstream (over stdio, and
# over streamable HTTP), puts 2026-07-28 and session-era calls through it from 1 and 16
# clients (and from one client of `mcps stdio`), and prints the instructions per call, with and without the call history's SQLite
# writes (their share per call follows how many calls a batch holds). To compare two
# builds, run it on each, in the same session. Needs valgrind (Debian's `valgrind`) and a
# release build (`cargo build --release --bins --examples && cargo bench --bench gateway --no-run`).
set -euo pipefail
cd "$(dirname "$0")/.."

mcps=$(realpath "${1:-target/release/mcps}")
echo_upstream=$PWD/target/release/examples/echo_upstream
load=$(find "$PWD/target/release/deps" -maxdepth 1 -name 'gateway-*' -type f -executable -printf '%T@ %p\n' |
    sort -rn | head -1 | cut -d' ' -f2)
command -v valgrind > /dev/null || { echo "valgrind is needed: apt-get install valgrind" >&2; exit 1; }
[ -x "$mcps" ] && [ -x "$echo_upstream" ] && [ -n "$load" ] || {
    echo "build first: cargo build --release --bins --examples && cargo bench --bench gateway --no-run" >&2
    exit 1
}

work=$(mktemp -d)
echo_pid=
headed_pid=
cleanup() {
    [ -n "$echo_pid" ] && kill "$echo_pid" 2> /dev/null
    [ -n "$headed_pid" ] && kill "$headed_pid" 2> /dev/null
    rm -rf "$work"
}
trap cleanup EXIT

echo_port=18190
"$echo_upstream" --http "$echo_port" > "$work/echo.log" 2>&1 &
echo_pid=$!
# The same echo, its tool's `message` marked to go in a header too (SEP-2243).
headed_port=18191
"$echo_upstream" --http "$headed_port" --header-argument > "$work/headed.log" 2>&1 &
headed_pid=$!

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
listening() { for _ in $(seq 1 240); do ss -ltn | grep -q ":$1 " && return 0; sleep 0.5; done; return 1; }

# instructions UPSTREAM-YAML ERA CLIENTS CALLS-EACH [message-in-header|via-call-tool|search-tools]:
# the gateway's instructions per call (via-call-tool: through the tool search's call_tool, on a
# gateway with catalog.tool_search; search-tools: the search's own search_tools, which the
# gateway answers).
instructions() {
    local dir port gateway calls search=
    dir=$(mktemp -d -p "$work")
    port=$(free_port)
    case "${5:-}" in via-call-tool | search-tools) search='catalog:\n  tool_search: true\n' ;; esac
    printf "logging:\n  level: warn\n${search}upstreams:\n  echo:\n    %s\n" "$1" > "$dir/proxy.yaml"
    (cd "$dir" && exec valgrind --tool=callgrind --callgrind-out-file="$dir/out.%p" \
        "$mcps" serve --listen "127.0.0.1:$port" -c proxy.yaml > "$dir/gateway.log" 2>&1) &
    gateway=$!
    listening "$port" || { echo "the gateway did not listen; see its log:" >&2; cat "$dir/gateway.log" >&2; exit 1; }
    "$load" --load "http://127.0.0.1:$port/mcp" echo__echo "$3" 50 "$2" ${5:-} > /dev/null # warm-up
    sleep 0.5
    callgrind_control --zero "$gateway" > /dev/null 2>&1
    calls=$("$load" --load "http://127.0.0.1:$port/mcp" echo__echo "$3" "$4" "$2" ${5:-} | awk '{print $1}')
    callgrind_control --dump "$gateway" > /dev/null 2>&1
    kill "$gateway"
    wait "$gateway" 2> /dev/null || true
    per_call "$dir/out.$gateway.1" "$calls"
}

# per_call DUMP CALLS: the instructions per call in callgrind's DUMP, in all, SQLite's, and
# without SQLite's. The call history's SQLite writes come apart from the rest: their cost per
# call depends on how many calls each batch holds, which follows the machine's timing, not
# the code.
per_call() {
    callgrind_annotate --inclusive=yes "$1" 2> /dev/null |
        awk -v calls="$2" '
            /PROGRAM TOTALS/ { gsub(",", "", $1); total = $1 }
            /:sqlite3_step / { gsub(",", "", $1); sqlite = $1 }
            END { printf "%.0f | %.0f | %.0f", total / calls, sqlite / calls, (total - sqlite) / calls }'
}

listening "$echo_port" && listening "$headed_port" || { echo "the echo upstream did not listen" >&2; exit 1; }
echo "| upstream | era | clients | gateway instructions per call | of which SQLite's | without SQLite |"
echo "|---|---|---:|---:|---:|---:|"
for upstream in stdio http; do
    case $upstream in
    stdio) yaml="command: \"$echo_upstream\"" ;;
    http) yaml="url: \"http://127.0.0.1:$echo_port/mcp\"" ;;
    esac
    for era in modern legacy; do
        label=$([ $era = modern ] && echo 2026-07-28 || echo 2025-11-25)
        echo "| $upstream | $label | 1 | $(instructions "$yaml" $era 1 1000) |"
        echo "| $upstream | $label | 16 | $(instructions "$yaml" $era 16 100) |"
    done
done
# A call whose arguments the gateway rewrites (a pinned one): read, rewritten and written
# again before the lane sends it.
pinned="url: \"http://127.0.0.1:$echo_port/mcp\"
    tools:
      echo: {arguments: {pinned: 1}}"
echo "| http, an argument pinned | 2026-07-28 | 1 | $(instructions "$pinned" modern 1 1000) |"
# A call whose argument goes in a header too: the client's header checked against the body,
# and the upstream's written.
headed="url: \"http://127.0.0.1:$headed_port/mcp\""
echo "| http, an argument in a header | 2026-07-28 | 1 | $(instructions "$headed" modern 1 1000 message-in-header) |"
# A call through the tool search's call_tool: unwrapped to the tool it names.
stdio="command: \"$echo_upstream\""
echo "| stdio, through call_tool | 2026-07-28 | 1 | $(instructions "$stdio" modern 1 1000 via-call-tool) |"
# The search's own search_tools, which no upstream answers.
echo "| none, search_tools | 2026-07-28 | 1 | $(instructions "$stdio" modern 1 1000 search-tools) |"
echo "| none, search_tools | 2025-11-25 | 1 | $(instructions "$stdio" legacy 1 1000 search-tools) |"

# stdio_instructions ERA: the instructions per call of `mcps stdio` (the client spawns it)
# in front of the echo over stdio; ERA `typed` is 2026-07-28 calls that take rmcp's typed way
# (a key of the protocol's own in `_meta` that the gateway's own way does not read).
stdio_instructions() {
    local dir calls
    dir=$(mktemp -d -p "$work")
    printf 'logging:\n  level: warn\nupstreams:\n  echo:\n    command: "%s"\n' "$echo_upstream" > "$dir/proxy.yaml"
    calls=$(cd "$dir" && "$load" --stdio-counted echo__echo 1000 "$1" \
        valgrind --tool=callgrind --callgrind-out-file="$dir/out.%p" "$mcps" stdio -c proxy.yaml |
        awk '{print $1}')
    per_call "$(ls "$dir"/out.*.1)" "$calls"
}
echo "| \`mcps stdio\` → stdio | 2025-11-25 | 1 | $(stdio_instructions legacy) |"
echo "| \`mcps stdio\` → stdio | 2026-07-28 | 1 | $(stdio_instructions modern) |"
echo "| \`mcps stdio\` → stdio, rmcp's typed way | 2026-07-28 | 1 | $(stdio_instructions typed) |"
