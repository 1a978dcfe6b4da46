//! pos-gateway's outer layer: the actix-web HTTP API, the `pos-gateway` CLI, configuration,
//! and the wiring of the domain's use cases to persistence and the POS adapters.
//!
//! This is the only crate that knows HTTP status codes and the only one that depends on all the
//! others; nothing depends on it.

mod admin;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod dto;
pub mod error;
pub mod limits;
pub mod openapi;
pub mod routes;
pub mod schedule;
pub mod secret_strength;
pub mod shared_state;
pub mod state;
pub mod sync;
pub mod telemetry;

/// The one progress bar a command may show (`sync`'s), and logs that go around it: a log
/// line written under a bar would leave a stale copy of the bar on the terminal.
pub mod progress {
    use std::sync::{Mutex, PoisonError};

    use indicatif::ProgressBar;

    static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

    fn shown() -> std::sync::MutexGuard<'static, Option<ProgressBar>> {
        SHOWN.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Logs are written around `bar` until the guard is dropped.
    pub fn show(bar: &ProgressBar) -> Shown {
        *shown() = Some(bar.clone());
        Shown
    }

    /// While it lives, logs go around the shown bar.
    #[must_use]
    pub struct Shown;

    impl Drop for Shown {
        fn drop(&mut self) {
            *shown() = None;
        }
    }

    /// stderr, with the shown bar cleared while a line is written.
    pub struct LogWriter;

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
        type Writer = LogWriter;
        fn make_writer(&'a self) -> LogWriter {
            LogWriter
        }
    }

    impl std::io::Write for LogWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let bar = shown().clone();
            match bar {
                Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf))?,
                None => std::io::stderr().write_all(buf)?,
            }
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            std::io::stderr().flush()
        }
    }
}
