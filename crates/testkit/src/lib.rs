//! pos-gateway's test and development harness: what tests, examples, the bench and xtask share
//! to set up the real thing.
//!
//! - [`pg`]: a fresh PostgreSQL database per test or run ([`pg::TestDatabase`], behind the
//!   `postgres` feature), dropped again when its guard is dropped;
//! - [`pg_cluster`]: a throw-away PostgreSQL cluster of a test's own, with its own settings
//!   (TLS, say), stopped and removed when dropped;
//! - [`gateway`]: the `pos-gateway` binary as a process (admin commands with `--json`, `serve`
//!   on a free port once `/healthz` answers, kill on drop, what `/proc` says about it);
//! - [`http`] and [`procfs`]: the std-only pieces the launcher is built from.
//!
//! Only ever a dev-dependency (or a dependency of the bench and xtask): the gateway itself must
//! never depend on it. It must not depend on any crate of the workspace either: it knows the
//! gateway as a binary, its CLI and `/healthz`, and PostgreSQL as a URL. Without the `postgres`
//! feature it needs std and serde_json only, so xtask stays light.

pub mod gateway;
pub mod http;
pub mod pg;
pub mod pg_cluster;
pub mod procfs;
