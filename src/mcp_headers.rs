//! The HTTP headers of MCP's streamable HTTP transport, as names parsed once: a lookup by a
//! `&str` parses and checks the name again, on every request.

pub mod arguments;

use http::HeaderName;

pub const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
pub const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
/// SEP-2243: the method of a 2026-07-28 request, and what it names (a tool's name).
pub const METHOD: HeaderName = HeaderName::from_static("mcp-method");
pub const NAME: HeaderName = HeaderName::from_static("mcp-name");
/// SEP-2243: what an argument's header is named before its schema's `x-mcp-header`.
pub const PARAM_PREFIX: &str = "mcp-param-";
