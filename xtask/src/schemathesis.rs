//! `cargo xtask schemathesis`: property-based tests of the running gateway against the OpenAPI
//! document it serves, with Schemathesis (<https://schemathesis.readthedocs.io>).

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use testkit::gateway::Gateway;
use testkit::http::{self, Request};

use crate::util::{self, Failure};

/// The Schemathesis release the task installs; bump it deliberately (its checks change).
const SCHEMATHESIS_VERSION: &str = "4.32.5";
/// The checks that matter: no 5xx, and every response (status, content type, headers, body)
/// as the document says.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,response_headers_conformance";
const CATALOG: &str = "schemathesis-kiosk";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Schemathesis' configuration and hooks, checked in beside this task. The run's values (the
/// catalog, the seeded customers' ids) reach the configuration as dictionary files written
/// beside a copy of it, and the hooks through the environment (`KIOSK_*`).
const CONFIG: &str = "xtask/schemathesis/schemathesis.toml";
const HOOKS: &str = "xtask/schemathesis/hooks.py";

pub const NOTES: &str =
    "  Builds the release binary, starts it on a free port of 127.0.0.1 over a fresh SQLite
  file in target/schemathesis/ with a `local` store, a catalog and a few customers, and runs
  Schemathesis (installed in a venv under target/, pinned) against its /openapi.json with a
  token for the catalog. Checks: not_a_server_error, status_code_conformance,
  content_type_conformance, response_schema_conformance, response_headers_conformance.
  Fails on any of them. Its configuration and hooks are xtask/schemathesis/schemathesis.toml
  and hooks.py; the run's catalog and customer ids reach the configuration as dictionaries
  (catalogs.dict, customers.dict) beside a copy of it in target/schemathesis/, and the hooks
  as KIOSK_CATALOG and KIOSK_CUSTOMER_1..3. Needs python3 with venv and pip (PyPI) the first
  time.
  `--gateway <binary>` tests that binary instead of building the release one.
  Arguments after `--` go to `st run` (e.g. -- --max-examples 500 --seed 1).
  Reports (JUnit, NDJSON) and the gateway's log stay in target/schemathesis/.
";

pub fn run(args: &[String]) -> Result<(), Failure> {
    if matches!(args.first().map(String::as_str), Some("-h" | "--help")) {
        eprint!("{USAGE}\n\n{NOTES}");
        return Ok(());
    }
    let (gateway, extra) = parse_args(args)?;
    let bin = match gateway {
        Some(bin) => bin,
        None => {
            util::step("cargo build --release -p pos-gateway");
            let status = util::cargo()
                .args(["build", "--release", "-p", "pos-gateway"])
                .status()
                .map_err(|e| Failure::new(format!("could not run cargo build: {e}")))?;
            if !status.success() {
                return Err(Failure::from_status("cargo build --release", status));
            }
            util::target_dir()
                .join("release")
                .join(format!("pos-gateway{}", std::env::consts::EXE_SUFFIX))
        }
    };
    let work = util::target_dir().join("schemathesis");
    let summary = if extra.is_empty() {
        against(&bin, &work)?
    } else {
        against_with(&bin, &work, &extra)?
    };
    util::step(&summary);
    Ok(())
}

const USAGE: &str = "Usage: cargo xtask schemathesis [--gateway <binary>] [-- <st run args>]";

/// `--gateway <binary>` (instead of building the release one), and what follows `--`.
fn parse_args(args: &[String]) -> Result<(Option<PathBuf>, Vec<String>), Failure> {
    let mut gateway = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--" => return Ok((gateway, rest.cloned().collect())),
            "--gateway" => {
                let path = rest
                    .next()
                    .ok_or_else(|| Failure::new(format!("--gateway needs a path\n{USAGE}")))?;
                gateway = Some(PathBuf::from(path));
            }
            other => {
                return Err(Failure::new(format!(
                    "unexpected argument `{other}`\n{USAGE}"
                )));
            }
        }
    }
    Ok((gateway, Vec::new()))
}

/// Runs Schemathesis against `gateway_bin` (started here, over a fresh database in
/// `work_dir`, and stopped before returning); returns a one-line summary, or fails when a
/// check failed.
pub fn against(gateway_bin: &Path, work_dir: &Path) -> Result<String, Failure> {
    against_with(gateway_bin, work_dir, &[])
}

fn against_with(gateway_bin: &Path, work_dir: &Path, extra: &[String]) -> Result<String, Failure> {
    if !gateway_bin.is_file() {
        return Err(Failure::new(format!(
            "{} does not exist: build it first",
            gateway_bin.display()
        )));
    }
    fs::create_dir_all(work_dir)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", work_dir.display())))?;
    let st = install_schemathesis()?;

    util::step("a gateway with a local store, a catalog and a few customers");
    let gateway = gateway(gateway_bin, work_dir)?;
    let store = gateway.admin(&[
        "store",
        "add",
        "--name",
        "schemathesis",
        "--vendor",
        "local",
    ])?;
    let store = store
        .get("id")
        .and_then(Value::as_i64)
        .ok_or_else(|| Failure::new(format!("`store add` printed no id: {store}")))?;
    gateway.admin(&[
        "catalog",
        "add",
        "--store",
        &store.to_string(),
        "--id",
        CATALOG,
    ])?;
    let token = gateway.admin(&["token", "--catalog", CATALOG, "--ttl", "6h"])?;
    let token = token
        .get("token")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::new(format!("`token` printed no token: {token}")))?
        .to_owned();
    let running = gateway.serve()?;
    let mut customers = Vec::new();
    for (first, last, email, phone) in [
        ("John", "Doe", "john.doe@example.com", "555-123-4567"),
        ("Jane", "Roe", "jane.roe@example.com", "555-987-6543"),
        ("Ann", "Lee", "ann.lee@example.com", "(555) 222-3333"),
    ] {
        let body = json!({"customer": {"first_name": first, "last_name": last, "email": email,
            "phone": phone, "birthday": "1990-04-05"}})
        .to_string();
        let path = format!("/api/v1/{CATALOG}/customers");
        let answer = http::send(
            running.address,
            &Request::post_json(&path, &body).bearer(&token),
        )
        .map_err(|e| Failure::new(format!("POST {path}: {e}")))?;
        if answer.status != 201 {
            return Err(Failure::new(format!(
                "seeding a customer gave {}: {}",
                answer.status, answer.body
            )));
        }
        let created: Value = serde_json::from_str(&answer.body).unwrap_or_default();
        let id = created
            .pointer("/customer/customer_id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Failure::new(format!("the created customer has no id: {}", answer.body))
            })?;
        customers.push(id.to_owned());
    }

    let config = write_config(work_dir, &customers)?;
    let report_dir = work_dir.join("report");
    if report_dir.exists() {
        fs::remove_dir_all(&report_dir)
            .map_err(|e| Failure::new(format!("cannot clear {}: {e}", report_dir.display())))?;
    }
    util::step(&format!(
        "schemathesis {SCHEMATHESIS_VERSION} against http://{}/openapi.json",
        running.address
    ));
    let mut command = Command::new(&st);
    command
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("http://{}/openapi.json", running.address))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", CHECKS])
        .args(["--request-timeout", "30"])
        .args(["--report", "junit,ndjson"])
        .arg("--report-dir")
        .arg(&report_dir)
        .args(extra)
        // Its cache of failing cases (replayed first next time) goes to `.schemathesis/` here.
        .current_dir(work_dir)
        .env("SCHEMATHESIS_HOOKS", util::workspace_root().join(HOOKS))
        .env("KIOSK_CATALOG", CATALOG)
        .envs(
            customers
                .iter()
                .enumerate()
                .map(|(i, id)| (format!("KIOSK_CUSTOMER_{}", i + 1), id)),
        )
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .stdout(Stdio::piped());
    let (status, output) = run_teed(command, "st run")?;
    let log = running.stop();
    let mut problems = Vec::new();
    if !status.success() {
        problems.push(format!("schemathesis failed ({status})"));
    }
    if log.contains("panicked") {
        problems.push(format!(
            "the gateway panicked (see {})",
            work_dir.join("gateway.log").display()
        ));
    }
    let figures = figures(&output);
    if problems.is_empty() {
        Ok(format!(
            "schemathesis {SCHEMATHESIS_VERSION}: {figures}; no failures"
        ))
    } else {
        Err(Failure::new(format!(
            "{} [{figures}] (reports in {})",
            problems.join("; "),
            report_dir.display()
        )))
    }
}

/// The venv's `st`, installing the pinned version when the venv lacks it.
fn install_schemathesis() -> Result<PathBuf, Failure> {
    let venv = util::target_dir().join("schemathesis-venv");
    let bin = venv.join(if cfg!(windows) { "Scripts" } else { "bin" });
    let st = bin.join(format!("st{}", std::env::consts::EXE_SUFFIX));
    let python = bin.join(format!("python{}", std::env::consts::EXE_SUFFIX));
    let marker = venv.join(format!("schemathesis-{SCHEMATHESIS_VERSION}.installed"));
    if st.is_file() && marker.is_file() {
        return Ok(st);
    }
    if !python.is_file() {
        util::step(&format!("python3 -m venv {}", venv.display()));
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .map_err(|e| Failure::new(format!("could not run python3 (is it installed?): {e}")))?;
        if !status.success() {
            return Err(Failure::from_status(
                "python3 -m venv (on Debian/Ubuntu: apt-get install python3-venv)",
                status,
            ));
        }
    }
    util::step(&format!("pip install schemathesis=={SCHEMATHESIS_VERSION}"));
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("schemathesis=={SCHEMATHESIS_VERSION}"),
        ])
        .status()
        .map_err(|e| Failure::new(format!("could not run {}: {e}", python.display())))?;
    if !status.success() {
        return Err(Failure::from_status("pip install schemathesis", status));
    }
    fs::write(&marker, SCHEMATHESIS_VERSION)
        .map_err(|e| Failure::new(format!("cannot write {}: {e}", marker.display())))?;
    Ok(st)
}

/// The gateway binary over a fresh SQLite file in `work_dir`, with a secret of this run's; its
/// log goes to `work_dir/gateway.log` (started afresh).
fn gateway(bin: &Path, work_dir: &Path) -> Result<Gateway, Failure> {
    let database = work_dir.join("gateway.db");
    let log = work_dir.join("gateway.log");
    for suffix in ["", "-wal", "-shm", "-journal"] {
        remove_if_there(&PathBuf::from(format!("{}{suffix}", database.display())))?;
    }
    remove_if_there(&log)?;
    let secret = random_secret()?;
    Ok(Gateway::new(bin)
        .current_dir(work_dir)
        .env(
            "POS_GATEWAY_DATABASE_URL",
            format!("sqlite://{}", database.display()),
        )
        .env("POS_GATEWAY_JWT_SECRET", secret)
        // Thousands of cases on one catalog: a 429 (documented) would say nothing about them.
        .env("POS_GATEWAY_CATALOG_RATE", "off")
        .env("RUST_LOG", "info")
        .log(log)
        .startup_timeout(STARTUP_TIMEOUT))
}

/// 32 random bytes as 64 hex digits, as `openssl rand -hex 32` makes: the gateway refuses a
/// weaker HS256 secret.
fn random_secret() -> Result<String, Failure> {
    use std::io::Read as _;
    let mut bytes = [0_u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut bytes))
        .map_err(|e| Failure::new(format!("cannot read /dev/urandom: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn remove_if_there(file: &Path) -> Result<(), Failure> {
    if file.exists() {
        fs::remove_file(file)
            .map_err(|e| Failure::new(format!("cannot remove {}: {e}", file.display())))?;
    }
    Ok(())
}

/// Copies the checked-in configuration into `work_dir` and writes the dictionaries it names
/// beside it: the catalog, and the seeded customers' ids. Returns the copy's path.
fn write_config(work_dir: &Path, customers: &[String]) -> Result<PathBuf, Failure> {
    let write = |name: &str, text: &str| {
        let path = work_dir.join(name);
        fs::write(&path, text)
            .map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))
    };
    write("catalogs.dict", &dictionary(&[CATALOG]))?;
    write("customers.dict", &dictionary(customers))?;
    let source = util::workspace_root().join(CONFIG);
    let config = work_dir.join("schemathesis.toml");
    fs::copy(&source, &config).map_err(|e| {
        Failure::new(format!(
            "cannot copy {} to {}: {e}",
            source.display(),
            config.display()
        ))
    })?;
    Ok(config)
}

/// A libFuzzer-style dictionary: one quoted entry a line.
fn dictionary(values: &[impl AsRef<str>]) -> String {
    values
        .iter()
        .map(|value| {
            let escaped = value.as_ref().replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{escaped}\"\n")
        })
        .collect()
}

/// Runs `command`, copying its standard output to ours as it comes; returns the status and
/// the output.
fn run_teed(
    mut command: Command,
    what: &str,
) -> Result<(std::process::ExitStatus, String), Failure> {
    let mut child = command
        .spawn()
        .map_err(|e| Failure::new(format!("could not run {what}: {e}")))?;
    let mut output = String::new();
    if let Some(stdout) = child.stdout.take() {
        let mut out = std::io::stdout();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(out, "{line}");
            output.push_str(&line);
            output.push('\n');
        }
    }
    let status = child
        .wait()
        .map_err(|e| Failure::new(format!("{what} did not finish: {e}")))?;
    Ok((status, output))
}

/// The figures of Schemathesis' summary (operations, test cases, failures), as one line.
fn figures(output: &str) -> String {
    let mut found = Vec::new();
    let mut section = None;
    for line in output.lines() {
        if line.trim().is_empty() {
            section = None;
        } else if !line.starts_with(' ') && line.ends_with(':') {
            section = match line {
                "API Operations:" => Some("operations"),
                "Test cases:" => Some("test cases"),
                "Failures:" => Some("failures"),
                _ => None,
            };
        } else if let Some(section) = section {
            let item = line
                .trim()
                .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
                .trim();
            found.push(format!("{section}: {item}"));
        }
    }
    if found.is_empty() {
        "no summary found in its output".to_owned()
    } else {
        found.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments_pick_a_binary_and_pass_the_rest_to_st() {
        let (gateway, extra) = parse_args(&[]).unwrap();
        assert_eq!((gateway, extra), (None, vec![]));
        let (gateway, extra) =
            parse_args(&strings(&["--gateway", "/x/gw", "--", "--seed", "1"])).unwrap();
        assert_eq!(gateway, Some(PathBuf::from("/x/gw")));
        assert_eq!(extra, ["--seed", "1"]);
        assert!(parse_args(&strings(&["--gateway"])).is_err());
        assert!(parse_args(&strings(&["--seed"])).is_err());
    }

    #[test]
    fn dictionaries_quote_one_entry_a_line() {
        assert_eq!(dictionary(&["kiosk", "12"]), "\"kiosk\"\n\"12\"\n");
        assert_eq!(dictionary(&[r#"a"b\c"#]), "\"a\\\"b\\\\c\"\n");
    }

    #[test]
    fn the_summary_figures_are_picked_out() {
        let output = "\
=================================== SUMMARY ====================================

API Operations:
  Selected: 9/9
  Tested: 9

Test Phases:
  \u{2705} Coverage

Failures:
  \u{274c} ST108 Response violates schema: 1

For more information, run `st explain ST108`.

Test cases:
  1591 generated, 1 found 1 unique failure

Seed: 1
";
        assert_eq!(
            figures(output),
            "operations: Selected: 9/9, operations: Tested: 9, \
             failures: ST108 Response violates schema: 1, \
             test cases: 1591 generated, 1 found 1 unique failure"
        );
    }
}
