//! MCPS.ONE: one MCP endpoint in front of many MCP servers.
//!
//! Layers, with dependencies pointing one way:
//! `main → cli → app → {downstream, admin} → gateway → upstream`; `config`, `error`, `security`,
//! `jsonrpc`, `line_reader` and `websocket` are leaves anyone may use.

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod downstream;
pub mod error;
#[cfg(any(feature = "fuzzing", test))]
pub mod fuzzing;
pub mod gateway;
pub mod hello;
pub mod jsonrpc;
pub mod line_reader;
pub mod logging;
pub mod maps;
pub mod mcp_headers;
pub mod metrics;
pub mod naming;
pub mod outbound;
pub mod progress;
pub mod registry;
pub mod reload;
pub mod security;
pub mod sync;
pub mod upstream;
pub mod websocket;
