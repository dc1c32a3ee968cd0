//! Arbitrary bytes through every JSON-RPC framing the gateway parses itself (stdio lines,
//! WebSocket frames, SSE events); see `mcps::fuzzing`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcps::fuzzing::framing(data));
