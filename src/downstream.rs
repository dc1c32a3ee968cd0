//! The transports clients reach the gateway through: stdio and streamable HTTP (`/mcp`).

pub mod http;
pub mod stdio;
