//! The integration tests, one module per subject, in one binary: one crate to build and one
//! executable to link, not one per file (which cost the suite minutes of linking), and one
//! pool of test threads for all of them. `cargo test --test suite conformance::` runs one
//! module. `common` holds the shared helpers.

mod common;

mod api_auth;
mod api_docs;
mod api_services;
mod api_tools_and_proxy;
mod api_upload;
mod bad_input_http;
mod bad_input_stdio;
mod cancellation_reaches_upstream;
mod client_credentials_stay_here;
mod client_requests;
mod concurrent_call_limit;
mod config_env;
mod config_errors;
mod conformance;
mod conformance_clients;
mod connection_limit;
mod credentials_end_channels;
mod dockerfile;
mod example_configs;
mod graceful_drain;
mod hot_reload;
mod http_session_lane;
mod http_upstream_restart;
mod http_upstreams;
mod hung_upstream_startup;
mod idle_session_expiry;
mod import_client_config;
mod interop_matrix;
mod logging;
mod login_throttle;
mod metrics;
mod missing_upstream;
mod modern_era_http;
mod no_orphans;
mod origin_validation;
#[cfg(feature = "otel")]
mod otel_export;
mod per_session_isolation;
mod progress_and_cancellation;
mod prompts_and_resources;
mod protocol_mode;
mod python_sdk_clients;
mod registry_durability;
mod remote_transports;
mod requests_outside_calls;
mod resource_subscriptions;
mod same_request_id;
mod session_bound_to_credential;
mod session_call_lane;
mod session_exhaustion;
mod session_limit;
mod session_sleep;
mod slow_clients;
mod slow_reader;
mod sqlite_locked;
mod startup_progress;
mod stdio_call_lane;
mod stdio_streams;
mod stray_upstream_answers;
mod tool_call_lane;
mod tool_definition_change;
mod tool_list_changed;
mod tool_naming;
mod typescript_clients;
mod upstream_crash_mid_call;
mod upstream_floods_and_garbage;
mod upstream_hang;
mod upstream_oauth;
mod upstream_stderr;
mod virtual_servers;
mod websocket_downstream;
