//! `pos-gateway-bench`: the load generator and the benchmark and chaos runs behind
//! `cargo xtask bench` and `cargo xtask chaos`. It drives the release `pos-gateway` binary as a
//! separate process, runs the vendor doubles in this one, and measures every baseline in the
//! same run as the scenario it judges.
//!
//! A tool, not a library: nothing depends on it, and the gateway's crates do not know it.

mod bench;
mod chaos;
mod db;
mod floor;
mod gateway;
mod load;
mod profile;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "pos-gateway-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every scenario with its baseline; writes summary.json and ratios.svg to --out.
    Run {
        /// 100k customers and 2 s per scenario instead of 1M and 10 s.
        #[arg(long)]
        quick: bool,
        /// The release `pos-gateway` binary.
        #[arg(long)]
        gateway: PathBuf,
        /// A PostgreSQL server; the bench makes a database of its own on it
        /// (`pos_gateway_bench_<random>`) and drops it when the run ends.
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value = "target/bench")]
        out: PathBuf,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Only these scenarios: healthz, lookup, local, vendor, get, thousand (repeatable).
        #[arg(long)]
        only: Vec<String>,
        /// A `perf` CPU profile of the gateway during each scenario, its top frames in
        /// <out>/profile-<scenario>.txt (needs Debian's linux-perf).
        #[arg(long)]
        profile: bool,
        /// The Treez store's `max_in_flight` (its vendor calls at once); the gateway's
        /// default when absent.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=4096))]
        max_in_flight: Option<u16>,
    },
    /// One chaos step: `faults` (vendor faults under load), `kill` (SIGKILL mid-create, then
    /// recovery), `replicas` (three gateways on one database) or `pg-outage` (needs --pg-stop
    /// and --pg-start).
    Chaos {
        step: String,
        #[arg(long)]
        gateway: PathBuf,
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value = "target/chaos")]
        out: PathBuf,
        /// A shell line that stops the PostgreSQL server of --database-url.
        #[arg(long)]
        pg_stop: Option<String>,
        /// A shell line that starts it again.
        #[arg(long)]
        pg_start: Option<String>,
    },
    /// The bare actix-web JSON handler the `/healthz` scenario is compared with.
    Floor {
        #[arg(long)]
        listen: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Floor { listen } => floor::serve(&listen),
        Command::Chaos {
            step,
            gateway,
            database_url,
            out,
            pg_stop,
            pg_start,
        } => runtime().and_then(|rt| {
            let _ = std::fs::create_dir_all(&out);
            let options = chaos::Options {
                gateway_binary: gateway,
                database_url,
                out,
            };
            rt.block_on(async {
                match (step.as_str(), pg_stop, pg_start) {
                    ("faults", _, _) => chaos::faults(&options).await,
                    ("kill", _, _) => chaos::kill(&options).await,
                    ("replicas", _, _) => chaos::replicas(&options).await,
                    ("pg-outage", Some(stop), Some(start)) => {
                        chaos::pg_outage(&options, &stop, &start).await
                    }
                    ("pg-outage", _, _) => {
                        Err(anyhow::anyhow!("pg-outage needs --pg-stop and --pg-start"))
                    }
                    (other, _, _) => Err(anyhow::anyhow!("unknown chaos step `{other}`")),
                }
            })
        }),
        Command::Run {
            quick,
            gateway,
            database_url,
            out,
            connections,
            only,
            profile,
            max_in_flight,
        } => runtime().and_then(|rt| {
            rt.block_on(bench::run(bench::Options {
                quick,
                gateway_binary: gateway,
                admin_url: database_url,
                out,
                connections,
                only,
                profile,
                max_in_flight,
            }))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
