//! pos-gateway's outer layer: the actix-web HTTP API, the `pos-gateway` CLI, configuration,
//! and the wiring of the domain's use cases to persistence and the POS adapters.
//!
//! This is the only crate that knows HTTP status codes and the only one that depends on all the
//! others; nothing depends on it.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod dto;
pub mod error;
pub mod openapi;
pub mod routes;
pub mod state;
pub mod sync;

/// Logs to stderr; `RUST_LOG` filters (default `info`).
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
