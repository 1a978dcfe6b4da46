//! Project automation for pos-gateway: `cargo xtask <task> [args]`
//! (`cargo xtask` is an alias in `.cargo/config.toml`).
//!
//! Adding a task: write a module exposing
//! `pub fn run(args: &[String]) -> Result<(), Failure>` and add one row to
//! [`TASKS`]. The help text is generated from the same table.

mod bench;
mod browser;
mod chaos;
mod fuzz;
mod pg;
mod schemathesis;
mod test;
mod util;

use std::process::ExitCode;

use util::Failure;

/// One `cargo xtask <name>` task.
struct Task {
    name: &'static str,
    /// Arguments shown after the name in the help text.
    args: &'static str,
    /// One-line description.
    about: &'static str,
    /// Extra help text printed after the task list (may be empty).
    notes: &'static str,
    run: fn(&[String]) -> Result<(), Failure>,
}

const TASKS: &[Task] = &[
    Task {
        name: "bench",
        args: "[--quick] [--connections N]",
        about: "Benchmark the release gateway against same-run baselines (target/bench/)",
        notes: bench::NOTES,
        run: bench::run,
    },
    Task {
        name: "browser",
        args: "[--gateway <binary>]",
        about: "Check /docs (Swagger UI) in headless Chromium against `pos-gateway demo`",
        notes: browser::NOTES,
        run: browser::run,
    },
    Task {
        name: "fuzz",
        args: "[TARGET] [--seconds N]",
        about: "Run the cargo-fuzz targets of fuzz/ (RUSTC_BOOTSTRAP=1), 30 s each by default",
        notes: fuzz::NOTES,
        run: fuzz::run,
    },
    Task {
        name: "chaos",
        args: "[faults] [kill] [replicas] [pg-outage] [schemathesis]",
        about: "Vendor faults under load, kill -9 recovery, three replicas, PostgreSQL outage, Schemathesis",
        notes: chaos::NOTES,
        run: chaos::run,
    },
    Task {
        name: "test",
        args: "[-- <cargo test args>]",
        about: "Run every test suite with a PostgreSQL server (TEST_DATABASE_URL)",
        notes: test::NOTES,
        run: test::run,
    },
    Task {
        name: "schemathesis",
        args: "[-- <st run args>]",
        about: "Fuzz the release gateway against its own /openapi.json with Schemathesis",
        notes: schemathesis::NOTES,
        run: schemathesis::run,
    },
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (name, rest) = match args.split_first() {
        Some((name, rest)) => (name.as_str(), rest),
        None => ("help", &[][..]),
    };
    if matches!(name, "help" | "-h" | "--help") {
        print!("{}", help());
        return ExitCode::SUCCESS;
    }
    let Some(task) = TASKS.iter().find(|task| task.name == name) else {
        eprint!("error: unknown task `{name}`\n\n{}", help());
        return ExitCode::from(2);
    };
    match (task.run)(rest) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("\nerror: cargo xtask {name}: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn help() -> String {
    let mut out = String::from("Usage: cargo xtask <task> [args]\n\nTasks:\n");
    let width = TASKS
        .iter()
        .map(|t| t.name.len() + 1 + t.args.len())
        .max()
        .unwrap_or(0)
        .max("help".len());
    for task in TASKS {
        let usage = format!("{} {}", task.name, task.args);
        out.push_str(&format!("  {usage:<width$}  {}\n", task.about));
    }
    out.push_str(&format!("  {:<width$}  Print this help\n", "help"));
    for task in TASKS.iter().filter(|t| !t.notes.is_empty()) {
        out.push_str(&format!("\n`{}`:\n{}", task.name, task.notes));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_task_once() {
        let text = help();
        for task in TASKS {
            assert!(text.contains(&format!("  {} ", task.name)), "{text}");
        }
        let mut names: Vec<_> = TASKS.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TASKS.len(), "duplicate task name");
        assert!(!names.contains(&"help"));
    }
}
