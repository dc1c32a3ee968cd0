//! The transports clients reach the gateway through: stdio, streamable HTTP (`/mcp`) and
//! WebSocket (`/ws`).

mod ask_ids;
mod connection;
mod endpoint;
pub mod http;
pub mod listener;
pub mod message_calls;
mod plain_call;
mod sessions;
pub mod stdio;
pub mod websocket;

pub use sessions::check_every as shared_sessions_check_every;
