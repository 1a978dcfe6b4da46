//! `cargo xtask bench`: release builds, PostgreSQL by the tests' rule, then the benchmark
//! runner (`pos-gateway-bench run`), which prints the table and writes target/bench/.

use crate::pg;
use crate::util::{self, Failure};

pub const NOTES: &str =
    "  Builds release binaries, finds PostgreSQL as `cargo xtask test` does, seeds a `local`
  store's mirror with 1,000,000 customers (100,000 with --quick) in a database of its own
  (pos_gateway_bench_<random>, dropped when the run ends), and runs each scenario for 10 s (2 s with
  --quick) at 64 connections beside its baseline measured in the same run. Prints the table,
  the gateway's start-up time and peak RSS, and the targets met or missed (never fails on
  them); writes target/bench/summary.json and target/bench/ratios.svg.
  Options: --quick, --connections N, --only SCENARIO (healthz, lookup, local, vendor, get,
  thousand; repeatable), --profile (a `perf` CPU profile of the gateway during each scenario,
  its top frames in target/bench/profile-<scenario>.txt; needs Debian's linux-perf),
  --max-in-flight N (the Treez store's vendor calls at once; the gateway's default, 256, when absent).
";

pub fn run(args: &[String]) -> Result<(), Failure> {
    let mut quick = false;
    let mut connections = String::from("64");
    let mut extra: Vec<String> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--connections" => {
                connections = args
                    .next()
                    .filter(|n| n.parse::<usize>().is_ok_and(|n| n > 0))
                    .ok_or_else(|| Failure::new("--connections needs a positive number"))?
                    .clone();
            }
            "--profile" => extra.push(arg.clone()),
            "--max-in-flight" => {
                let cap = args
                    .next()
                    .filter(|n| n.parse::<u16>().is_ok_and(|n| (1..=4096).contains(&n)))
                    .ok_or_else(|| Failure::new("--max-in-flight needs a number from 1 to 4096"))?;
                extra.extend([arg.clone(), cap.clone()]);
            }
            "--only" => {
                let scenario = args
                    .next()
                    .ok_or_else(|| Failure::new("--only needs a scenario"))?;
                extra.extend([arg.clone(), scenario.clone()]);
            }
            "-h" | "--help" => {
                eprint!(
                    "Usage: cargo xtask bench [--quick] [--connections N] [--only SCENARIO]... [--profile] [--max-in-flight N]\n\n{NOTES}"
                );
                return Ok(());
            }
            other => return Err(Failure::new(format!("unknown argument `{other}`"))),
        }
    }
    build_release()?;
    util::step("PostgreSQL for the benchmarks");
    let db = pg::provide()?;
    let release = util::target_dir().join("release");
    util::step(if quick {
        "benchmarks (quick)"
    } else {
        "benchmarks"
    });
    let mut command = std::process::Command::new(release.join("pos-gateway-bench"));
    command
        .current_dir(util::workspace_root())
        .arg("run")
        .arg("--gateway")
        .arg(release.join("pos-gateway"))
        .arg("--database-url")
        .arg(&db.url)
        .arg("--out")
        .arg(util::target_dir().join("bench"))
        .args(["--connections", &connections])
        .args(&extra);
    if quick {
        command.arg("--quick");
    }
    let status = command.status();
    db.stop();
    let status = status.map_err(|e| Failure::new(format!("could not run the bench: {e}")))?;
    if !status.success() {
        return Err(Failure::from_status("pos-gateway-bench", status));
    }
    Ok(())
}

/// `cargo build --release` of the gateway and the bench runner.
pub fn build_release() -> Result<(), Failure> {
    util::step("cargo build --release -p pos-gateway -p pos-gateway-bench");
    let status = util::cargo()
        .args([
            "build",
            "--release",
            "-p",
            "pos-gateway",
            "-p",
            "pos-gateway-bench",
        ])
        .status()
        .map_err(|e| Failure::new(format!("could not run cargo build: {e}")))?;
    if !status.success() {
        return Err(Failure::from_status("release build", status));
    }
    Ok(())
}
