//! The transports clients reach the gateway through: stdio, streamable HTTP (`/mcp`) and
//! WebSocket (`/ws`).

mod endpoint;
pub mod http;
pub mod listener;
mod session_owners;
pub mod stdio;
pub mod websocket;
