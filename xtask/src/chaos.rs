//! `cargo xtask chaos`: the fault and abuse suite against the release gateway.

use std::process::Command;

use crate::util::{self, Failure};
use crate::{bench, pg, schemathesis};

pub const NOTES: &str = "  Steps (all by default, or name some):
    faults      every vendor fault (401, 422, 429 + Retry-After, 500, 503, timeout, garbage,
                8 MiB body, reset mid-body) under 16 connections of creates and searches:
                each answer the contract's status, in time; descriptors and RSS flat after
    kill        SIGKILL with 200 creates in flight, restart: every customer the vendor
                created reaches the mirror (outbox recovery), none is created twice
    replicas    three `serve` processes on one database, the load spread over all three,
                each Treez store behind a double of its own: a store limited to 120/min
                sees at most the burst + W / interval calls in any window W (the busiest
                minute at most limit + burst); one token fetch per store; one
                Idempotency-Key at all three at once makes one vendor create; one new
                customer at all three with different keys makes one create, a 201 and two
                409s carrying it; SIGKILL of one mid-create: the other two recover every
                customer the vendor made, none twice; a scheduled sync every 3 s runs once
                per interval, not once per replica
    pg-outage   PostgreSQL (a throw-away cluster) stopped under load: /readyz and the API
                answer 503 in time; started again: the same process recovers
    schemathesis  Schemathesis against the live /openapi.json (see `cargo xtask schemathesis`)
  PostgreSQL for faults, kill and replicas: as `cargo xtask test` finds it. Logs: target/chaos/.
  Faster checks of the same kind run in `cargo xtask test` (isolation across catalogs,
  50 concurrent creates with one Idempotency-Key, kill -9 recovery, property tests);
  fuzzing is `cargo xtask fuzz`.
";

const STEPS: [&str; 5] = ["faults", "kill", "replicas", "pg-outage", "schemathesis"];

pub fn run(args: &[String]) -> Result<(), Failure> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        eprint!(
            "Usage: cargo xtask chaos [faults] [kill] [replicas] [pg-outage] [schemathesis]\n\n{NOTES}"
        );
        return Ok(());
    }
    if let Some(unknown) = args.iter().find(|a| !STEPS.contains(&a.as_str())) {
        return Err(Failure::new(format!(
            "unknown step `{unknown}`; steps: {}",
            STEPS.join(", ")
        )));
    }
    let wanted = |step: &str| args.is_empty() || args.iter().any(|a| a == step);
    bench::build_release()?;
    let release = util::target_dir().join("release");
    let out = util::target_dir().join("chaos");
    let runner = |step: &str, url: &str, extra: &[String]| -> Result<(), Failure> {
        util::step(&format!("chaos: {step}"));
        let status = Command::new(release.join("pos-gateway-bench"))
            .current_dir(util::workspace_root())
            .args(["chaos", step, "--gateway"])
            .arg(release.join("pos-gateway"))
            .args(["--database-url", url, "--out"])
            .arg(&out)
            .args(extra)
            .status()
            .map_err(|e| Failure::new(format!("could not run pos-gateway-bench: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(Failure::from_status(&format!("chaos step {step}"), status))
        }
    };
    let mut passed = Vec::new();
    if wanted("faults") || wanted("kill") || wanted("replicas") {
        util::step("PostgreSQL for the chaos steps");
        let db = pg::provide()?;
        let result = (|| -> Result<(), Failure> {
            if wanted("faults") {
                runner("faults", &db.url, &[])?;
                passed.push("faults");
            }
            if wanted("kill") {
                runner("kill", &db.url, &[])?;
                passed.push("kill");
            }
            if wanted("replicas") {
                runner("replicas", &db.url, &[])?;
                passed.push("replicas");
            }
            Ok(())
        })();
        db.stop();
        result?;
    }
    if wanted("pg-outage") {
        util::step("a throw-away PostgreSQL cluster to stop and start");
        let (cluster, url) = pg::throwaway()?;
        let extra = [
            "--pg-stop".to_owned(),
            cluster.stop_line.clone(),
            "--pg-start".to_owned(),
            cluster.start_line.clone(),
        ];
        let result = runner("pg-outage", &url, &extra);
        drop(cluster);
        result?;
        passed.push("pg-outage");
    }
    if wanted("schemathesis") {
        util::step("chaos: schemathesis");
        let summary =
            schemathesis::against(&release.join("pos-gateway"), &out.join("schemathesis"))?;
        eprintln!("{summary}");
        passed.push("schemathesis");
    }
    util::step(&format!("chaos passed: {}", passed.join(", ")));
    Ok(())
}
