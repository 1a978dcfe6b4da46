//! `cargo xtask schemathesis`: property-based tests of the running gateway against the OpenAPI
//! document it serves, with Schemathesis (<https://schemathesis.readthedocs.io>).

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::util::{self, Failure};

/// The Schemathesis release the task installs; bump it deliberately (its checks change).
const SCHEMATHESIS_VERSION: &str = "4.32.5";
/// The checks that matter: no 5xx, and every response (status, content type, headers, body)
/// as the document says.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,response_headers_conformance";
const CATALOG: &str = "schemathesis-kiosk";
/// How often generated requests use the real catalog and the seeded customers' ids (the rest
/// are random, which exercises the 404s).
const CATALOG_PROBABILITY: &str = "0.9";
const CUSTOMER_PROBABILITY: &str = "0.7";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

pub const NOTES: &str =
    "  Builds the release binary, starts it on a free port of 127.0.0.1 over a fresh SQLite
  file in target/schemathesis/ with a `local` store, a catalog and a few customers, and runs
  Schemathesis (installed in a venv under target/, pinned) against its /openapi.json with a
  token for the catalog. Checks: not_a_server_error, status_code_conformance,
  content_type_conformance, response_schema_conformance, response_headers_conformance.
  Fails on any of them. Needs python3 with venv and pip (PyPI) the first time.
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
    let gateway = Gateway::new(gateway_bin, work_dir)?;
    let store = gateway.admin(&[
        "store",
        "add",
        "--name",
        "schemathesis",
        "--vendor",
        "local",
    ])?;
    let store = json_field(&store, "id")
        .ok_or_else(|| Failure::new(format!("`store add` printed no id: {store}")))?;
    gateway.admin(&["catalog", "add", "--store", &store, "--id", CATALOG])?;
    let token = gateway.admin(&["token", "--catalog", CATALOG, "--ttl", "6h"])?;
    let token = json_field(&token, "token")
        .ok_or_else(|| Failure::new(format!("`token` printed no token: {token}")))?;
    let running = gateway.serve()?;
    let mut customers = Vec::new();
    for (first, last, email, phone) in [
        ("John", "Doe", "john.doe@example.com", "555-123-4567"),
        ("Jane", "Roe", "jane.roe@example.com", "555-987-6543"),
        ("Ann", "Lee", "ann.lee@example.com", "(555) 222-3333"),
    ] {
        let body = format!(
            r#"{{"customer":{{"first_name":"{first}","last_name":"{last}","email":"{email}","phone":"{phone}","birthday":"1990-04-05"}}}}"#
        );
        let (status, answer) = http(
            &running.address,
            "POST",
            &format!("/api/v1/{CATALOG}/customers"),
            Some(&token),
            Some(&body),
        )?;
        if status != 201 {
            return Err(Failure::new(format!(
                "seeding a customer gave {status}: {answer}"
            )));
        }
        customers
            .push(json_field(&answer, "customer_id").ok_or_else(|| {
                Failure::new(format!("the created customer has no id: {answer}"))
            })?);
    }

    let config = work_dir.join("schemathesis.toml");
    write_config(&config, &customers)?;
    let hooks = work_dir.join("schemathesis_hooks.py");
    write_hooks(&hooks, &customers)?;
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
        .env("SCHEMATHESIS_HOOKS", &hooks)
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

/// The gateway binary with its environment: a fresh SQLite file, a free port, a secret.
struct Gateway {
    bin: PathBuf,
    log: PathBuf,
    env: Vec<(&'static str, String)>,
    address: String,
}

impl Gateway {
    fn new(bin: &Path, work_dir: &Path) -> Result<Self, Failure> {
        let database = work_dir.join("gateway.db");
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let file = PathBuf::from(format!("{}{suffix}", database.display()));
            if file.exists() {
                fs::remove_file(&file)
                    .map_err(|e| Failure::new(format!("cannot remove {}: {e}", file.display())))?;
            }
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| Failure::new(format!("no free port on 127.0.0.1: {e}")))?
            .port();
        let address = format!("127.0.0.1:{port}");
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let secret = format!("schemathesis-{nanos:032x}-{:08x}", std::process::id());
        Ok(Self {
            bin: bin.to_path_buf(),
            log: work_dir.join("gateway.log"),
            env: vec![
                (
                    "POS_GATEWAY_DATABASE_URL",
                    format!("sqlite://{}", database.display()),
                ),
                ("POS_GATEWAY_LISTEN", address.clone()),
                ("POS_GATEWAY_JWT_SECRET", secret),
                ("RUST_LOG", "info".into()),
            ],
            address,
        })
    }

    /// `pos-gateway <args> --json`, with this environment only (the caller's `POS_GATEWAY_*`
    /// variables are not passed on).
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command.args(args);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("POS_GATEWAY_") {
                command.env_remove(name);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        command
    }

    fn admin(&self, args: &[&str]) -> Result<String, Failure> {
        let shown = format!("pos-gateway {} --json", args.join(" "));
        let output = self
            .command(args)
            .arg("--json")
            .output()
            .map_err(|e| Failure::new(format!("could not run {shown}: {e}")))?;
        if !output.status.success() {
            return Err(Failure::new(format!(
                "{shown} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// `pos-gateway serve`, once `/healthz` answers.
    fn serve(&self) -> Result<Running, Failure> {
        let log = fs::File::create(&self.log)
            .map_err(|e| Failure::new(format!("cannot create {}: {e}", self.log.display())))?;
        let log_err = log
            .try_clone()
            .map_err(|e| Failure::new(format!("cannot share {}: {e}", self.log.display())))?;
        let child = self
            .command(&["serve"])
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| Failure::new(format!("could not start {}: {e}", self.bin.display())))?;
        let mut running = Running {
            child: Some(child),
            address: self.address.clone(),
            log: self.log.clone(),
        };
        let started = Instant::now();
        loop {
            if let Ok((200, _)) = http(&self.address, "GET", "/healthz", None, None) {
                return Ok(running);
            }
            let exited = running
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                return Err(Failure::new(format!(
                    "the gateway exited ({status}) before answering; its log:\n{}",
                    running.stop()
                )));
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                return Err(Failure::new(format!(
                    "the gateway did not answer /healthz on {} within {STARTUP_TIMEOUT:?}; its log:\n{}",
                    self.address,
                    running.stop()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A gateway process; killed when stopped or dropped (also when the task fails half-way).
struct Running {
    child: Option<Child>,
    address: String,
    log: PathBuf,
}

impl Running {
    /// Kills the gateway and returns its log.
    fn stop(mut self) -> String {
        self.kill();
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The Schemathesis configuration: the real catalog and the seeded customers' ids for the path
/// parameters, most of the time.
fn write_config(path: &Path, customers: &[String]) -> Result<(), Failure> {
    let quoted: Vec<String> = customers.iter().map(|c| format!("\"{c}\"")).collect();
    let text = format!(
        "# Written by `cargo xtask schemathesis`; rewritten on every run.\n\
         [dictionaries.catalogs]\n\
         values = [\"{CATALOG}\"]\n\n\
         [dictionaries.customers]\n\
         values = [{}]\n\n\
         [parameters]\n\
         \"path.catalog_id\" = {{ dictionary = \"catalogs\", probability = {CATALOG_PROBABILITY} }}\n\
         \"path.customer_id\" = {{ dictionary = \"customers\", probability = {CUSTOMER_PROBABILITY} }}\n",
        quoted.join(", ")
    );
    fs::write(path, text).map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))
}

/// The coverage phase takes no dictionaries: it would send `0` for the catalog and get 404 on
/// every boundary case of a body or a query. This hook puts the real catalog and a seeded
/// customer in the path of every coverage case, and a fresh `Idempotency-Key` in its headers,
/// except in those that probe that very parameter.
fn write_hooks(path: &Path, customers: &[String]) -> Result<(), Failure> {
    let quoted: Vec<String> = customers.iter().map(|c| format!("\"{c}\"")).collect();
    let text = format!(
        r#""""Written by `cargo xtask schemathesis`; rewritten on every run."""

import uuid

import schemathesis
from schemathesis.generation.meta import TestPhase

CATALOG = "{CATALOG}"
CUSTOMERS = [{customers}]


@schemathesis.hook
def before_call(context, case, kwargs):
    meta = case.meta
    if meta is None or meta.phase.name != TestPhase.COVERAGE or not case.path_parameters:
        return
    probed = getattr(meta.phase.data, "parameter", None)
    if "catalog_id" in case.path_parameters and probed != "catalog_id":
        case.path_parameters["catalog_id"] = CATALOG
    if "customer_id" in case.path_parameters and probed != "customer_id":
        case.path_parameters["customer_id"] = CUSTOMERS[len(str(case.body)) % len(CUSTOMERS)]
    # One example key for every case would make most of them replays or 422 reuses.
    if case.headers and "Idempotency-Key" in case.headers and probed != "Idempotency-Key":
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
"#,
        customers = quoted.join(", ")
    );
    fs::write(path, text).map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))
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

/// One HTTP/1.1 request on a fresh connection; the status and the body.
fn http(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, String), Failure> {
    let fail = |e: std::io::Error| Failure::new(format!("{method} http://{address}{path}: {e}"));
    let mut stream = TcpStream::connect(address).map_err(fail)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(fail)?;
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or_default();
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).map_err(fail)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(fail)?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Failure::new(format!("{method} {path}: not an HTTP answer: {head}")))?;
    Ok((status, body.to_owned()))
}

/// The value of the first `"key": value` in a JSON text, as text (a string's content, or a
/// number): enough for the gateway's own flat answers, without a JSON parser.
fn json_field(json: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\":");
    let rest = json.get(json.find(&needle)? + needle.len()..)?.trim_start();
    if let Some(string) = rest.strip_prefix('"') {
        return string.get(..string.find('"')?).map(str::to_owned);
    }
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        .unwrap_or(rest.len());
    rest.get(..end).filter(|v| !v.is_empty()).map(str::to_owned)
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
    fn fields_are_read_from_flat_json() {
        let store = r#"{"id":7,"name":"schemathesis","vendor":"local"}"#;
        assert_eq!(json_field(store, "id").as_deref(), Some("7"));
        assert_eq!(json_field(store, "vendor").as_deref(), Some("local"));
        let created = r#"{"customer":{"status":"ACTIVE","customer_id":"12","first_name":"J"}}"#;
        assert_eq!(json_field(created, "customer_id").as_deref(), Some("12"));
        assert_eq!(json_field(created, "missing"), None);
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
