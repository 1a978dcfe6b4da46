//! http-api's integration tests, as one test binary (one link instead of seven, and one place
//! for the helpers): the HTTP API end to end over a real server and real databases, and the
//! `pos-gateway` binary as an operator runs it.

// First, so that its `on_both_databases!` is in scope in every module below.
#[macro_use]
mod helpers;

mod api;
mod cli;
mod concurrency;
mod errors;
mod isolation;
mod limits;
mod observability;
mod recovery;
mod replicas;
mod scheduled_sync;
mod surface;
mod sync;
mod tokens;
mod vendor_specs;
mod vendors;
