//! `cargo xtask test`: every test suite, with a PostgreSQL server.

use crate::pg;
use crate::util::{self, Failure};

pub const NOTES: &str =
    "  Runs `cargo test --workspace --all-targets [args]` with TEST_DATABASE_URL set to a
  PostgreSQL database the tests may use to CREATE DATABASE. The server is, first that applies:
    1. TEST_DATABASE_URL, if set (non-empty) in the environment, as is;
    2. a server answering postgres://postgres@127.0.0.1:5432/test;
    3. a throw-away cluster in target/xtask-pg/ (initdb + pg_ctl from PATH or
       /usr/lib/postgresql/*/bin, as user postgres when run as root), on a random
       port of 127.0.0.1, stopped when the tests end (also on failure or Ctrl-C);
    4. otherwise it fails, explaining how to install PostgreSQL.
  XTASK_PG=throwaway skips 1 and 2 (always uses a throw-away cluster).
  Example: cargo xtask test -- customers::   (a test name filter)
";

pub fn run(args: &[String]) -> Result<(), Failure> {
    if matches!(args.first().map(String::as_str), Some("-h" | "--help")) {
        eprint!("Usage: cargo xtask test [-- <cargo test args>]\n\n{NOTES}");
        return Ok(());
    }
    let extra = cargo_test_args(args);

    util::step("PostgreSQL for the tests");
    let db = pg::provide()?;

    let mut shown = vec!["cargo test --workspace --all-targets".to_string()];
    shown.extend(extra.iter().map(|a| util::shell_quote(a)));
    util::step(&shown.join(" "));
    let status = util::cargo()
        .args(["test", "--workspace", "--all-targets"])
        .args(&extra)
        .env("TEST_DATABASE_URL", &db.url)
        .status();
    let description = db.description.clone();
    db.stop();

    let status = status.map_err(|e| Failure::new(format!("could not run cargo test: {e}")))?;
    if !status.success() {
        return Err(Failure::from_status("test suites", status));
    }
    util::step(&format!(
        "all test suites passed (PostgreSQL: {description})"
    ));
    Ok(())
}

/// Arguments for `cargo test`: everything after an optional leading `--`.
fn cargo_test_args(args: &[String]) -> Vec<String> {
    match args.split_first() {
        Some((first, rest)) if first == "--" => rest.to_vec(),
        _ => args.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn extra_args_follow_the_separator() {
        assert!(cargo_test_args(&[]).is_empty());
        assert_eq!(cargo_test_args(&strings(&["--", "name"])), ["name"]);
        assert_eq!(
            cargo_test_args(&strings(&["--", "name", "--", "--nocapture"])),
            ["name", "--", "--nocapture"]
        );
        assert_eq!(cargo_test_args(&strings(&["name"])), ["name"]);
    }
}
