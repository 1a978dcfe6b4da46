//! `cargo xtask browser`: the API reference page (`/docs`, Swagger UI) checked in a real
//! headless Chromium against a running `pos-gateway demo`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use testkit::gateway::Gateway;

use crate::util::{self, Failure};

/// The playwright-core release the task installs (it drives the system's Chromium over CDP
/// and downloads no browser); bump it deliberately.
const PLAYWRIGHT_VERSION: &str = "1.65.1";
/// The check itself, run with Node.
const SCRIPT: &str = "xtask/browser/docs_page.cjs";
/// `pos-gateway demo`'s catalog.
const CATALOG: &str = "demo";
/// The browser binaries looked for in `PATH` when `CHROMIUM` is not set.
const BROWSERS: &[&str] = &["chromium", "chromium-browser"];
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

const INSTALL_CHROMIUM: &str = "install it with `sudo apt-get install chromium` (Debian; the \
     package is `chromium-browser` on older Ubuntu), or set CHROMIUM to a Chromium or Chrome \
     binary";
const INSTALL_NODE: &str =
    "install Node.js 18 or later with npm (`sudo apt-get install nodejs npm` on Debian)";

pub const NOTES: &str =
    "  Builds the gateway (debug), starts `pos-gateway demo` on a free port of 127.0.0.1 over a
  fresh SQLite file in target/browser/, gets a token with `pos-gateway token --catalog demo`,
  and runs xtask/browser/docs_page.cjs with Node: headless Chromium (playwright-core, pinned,
  installed with npm into target/browser/ the first time) opens /docs and fails unless it
  lands on Swagger UI at /docs/ with no request to another host and no script error, every
  operation of /openapi.json is listed, and Authorize + Try it out + Execute on the
  list-customers operation gets 200 from the demo. Screenshots: target/browser/docs.png
  (whole page) and docs-list-customers.png; the demo's log: target/browser/demo.log.
  Needs Chromium (`chromium` or `chromium-browser` in PATH, or CHROMIUM=<binary>) and Node
  with npm; fails, saying how to install them, when one is missing.
  `--gateway <binary>` checks that binary instead of building one.
";

const USAGE: &str = "Usage: cargo xtask browser [--gateway <binary>]";

pub fn run(args: &[String]) -> Result<(), Failure> {
    if matches!(args.first().map(String::as_str), Some("-h" | "--help")) {
        eprint!("{USAGE}\n\n{NOTES}");
        return Ok(());
    }
    let gateway = parse_args(args)?;
    // The tools first: a missing browser fails at once, before any build.
    let chromium = find_chromium(
        std::env::var_os("CHROMIUM").map(PathBuf::from),
        &util::path_dirs(),
    )?;
    let node = find_in(&util::path_dirs(), "node")
        .ok_or_else(|| Failure::new(format!("`node` is not in PATH: {INSTALL_NODE}")))?;
    let bin = match gateway {
        Some(bin) => bin,
        None => {
            util::step("cargo build -p pos-gateway");
            let status = util::cargo()
                .args(["build", "-p", "pos-gateway"])
                .status()
                .map_err(|e| Failure::new(format!("could not run cargo build: {e}")))?;
            if !status.success() {
                return Err(Failure::from_status("cargo build", status));
            }
            util::target_dir()
                .join("debug")
                .join(format!("pos-gateway{}", std::env::consts::EXE_SUFFIX))
        }
    };
    if !bin.is_file() {
        return Err(Failure::new(format!("{} does not exist", bin.display())));
    }
    let work = util::target_dir().join("browser");
    fs::create_dir_all(&work)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", work.display())))?;
    let modules = install_playwright(&work)?;

    util::step("pos-gateway demo over a fresh SQLite file");
    let database = work.join("demo.db");
    let log = work.join("demo.log");
    for file in [
        "demo.db",
        "demo.db-wal",
        "demo.db-shm",
        "demo.db-journal",
        "demo.log",
    ] {
        remove_if_there(&work.join(file))?;
    }
    let gateway = Gateway::new(&bin)
        .current_dir(&work)
        .env(
            "POS_GATEWAY_DATABASE_URL",
            format!("sqlite://{}", database.display()),
        )
        .env("RUST_LOG", "info")
        .log(&log)
        .startup_timeout(STARTUP_TIMEOUT);
    let running = gateway.demo()?;
    let token = gateway.admin(&["token", "--catalog", CATALOG])?;
    let token = token
        .get("token")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::new(format!("`token` printed no token: {token}")))?
        .to_owned();

    let screenshot = work.join("docs.png");
    util::step(&format!(
        "Chromium ({}) on {}/docs",
        chromium.display(),
        running.url()
    ));
    let status = Command::new(&node)
        .arg(util::workspace_root().join(SCRIPT))
        .env("NODE_PATH", &modules)
        .env("GATEWAY", running.url())
        .env("TOKEN", &token)
        .env("CATALOG", CATALOG)
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOT", &screenshot)
        .status()
        .map_err(|e| Failure::new(format!("could not run {}: {e}", node.display())))?;
    let demo_log = running.stop();
    if !status.success() {
        return Err(Failure::new(format!(
            "the docs page check failed ({status}); screenshot {}, the demo's log {}",
            screenshot.display(),
            log.display()
        )));
    }
    if demo_log.contains("panicked") {
        return Err(Failure::new(format!(
            "the demo panicked (see {})",
            log.display()
        )));
    }
    util::step(&format!(
        "the docs page works in Chromium; screenshots in {}",
        work.display()
    ));
    Ok(())
}

/// `--gateway <binary>`, or nothing.
fn parse_args(args: &[String]) -> Result<Option<PathBuf>, Failure> {
    match args {
        [] => Ok(None),
        [flag, path] if flag == "--gateway" => Ok(Some(PathBuf::from(path))),
        _ => Err(Failure::new(format!(
            "unexpected arguments {args:?}\n{USAGE}"
        ))),
    }
}

/// `CHROMIUM` when set (it must exist), else the first of [`BROWSERS`] in `dirs`; a failure
/// that says how to install it otherwise. Never a silent skip.
fn find_chromium(explicit: Option<PathBuf>, dirs: &[PathBuf]) -> Result<PathBuf, Failure> {
    if let Some(path) = explicit.filter(|p| !p.as_os_str().is_empty()) {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Failure::new(format!(
                "CHROMIUM={} is not a file: {INSTALL_CHROMIUM}",
                path.display()
            )))
        };
    }
    BROWSERS
        .iter()
        .find_map(|name| find_in(dirs, name))
        .ok_or_else(|| {
            Failure::new(format!(
                "Chromium is needed to check the docs page and was not found (looked for {} \
                 in PATH): {INSTALL_CHROMIUM}",
                BROWSERS.join(", ")
            ))
        })
}

fn find_in(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    dirs.iter()
        .map(|dir| dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX)))
        .find(|path| path.is_file())
}

/// `work/node_modules`, with the pinned playwright-core (installed when missing). npm runs no
/// package scripts, and playwright-core downloads no browser.
fn install_playwright(work: &Path) -> Result<PathBuf, Failure> {
    let modules = work.join("node_modules");
    let marker = work.join(format!("playwright-core-{PLAYWRIGHT_VERSION}.installed"));
    if marker.is_file() && modules.join("playwright-core").is_dir() {
        return Ok(modules);
    }
    let npm = find_in(&util::path_dirs(), "npm")
        .ok_or_else(|| Failure::new(format!("`npm` is not in PATH: {INSTALL_NODE}")))?;
    util::step(&format!("npm install playwright-core@{PLAYWRIGHT_VERSION}"));
    let status = Command::new(npm)
        .arg("install")
        .arg("--prefix")
        .arg(work)
        .args([
            "--no-save",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            &format!("playwright-core@{PLAYWRIGHT_VERSION}"),
        ])
        .status()
        .map_err(|e| Failure::new(format!("could not run npm: {e}")))?;
    if !status.success() {
        return Err(Failure::from_status("npm install playwright-core", status));
    }
    fs::write(&marker, PLAYWRIGHT_VERSION)
        .map_err(|e| Failure::new(format!("cannot write {}: {e}", marker.display())))?;
    Ok(modules)
}

fn remove_if_there(file: &Path) -> Result<(), Failure> {
    if file.exists() {
        fs::remove_file(file)
            .map_err(|e| Failure::new(format!("cannot remove {}: {e}", file.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-browser-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn without_chromium_the_task_fails_saying_how_to_install_it() {
        let empty = scratch("none");
        let error = find_chromium(None, std::slice::from_ref(&empty)).unwrap_err();
        assert!(
            error.message.contains("apt-get install chromium"),
            "{}",
            error.message
        );
        let error = find_chromium(Some(empty.join("nope")), &[]).unwrap_err();
        assert!(error.message.contains("CHROMIUM="), "{}", error.message);
        assert!(
            error.message.contains("apt-get install chromium"),
            "{}",
            error.message
        );
        fs::remove_dir_all(&empty).unwrap();
    }

    #[test]
    fn chromium_is_found_in_path_or_where_chromium_says() {
        let dir = scratch("found");
        let browser = dir.join("chromium-browser");
        fs::write(&browser, "").unwrap();
        assert_eq!(
            find_chromium(None, std::slice::from_ref(&dir)).unwrap(),
            browser
        );
        assert_eq!(find_chromium(Some(browser.clone()), &[]).unwrap(), browser);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn arguments_name_a_binary_or_nothing() {
        assert_eq!(parse_args(&[]).unwrap(), None);
        assert_eq!(
            parse_args(&["--gateway".into(), "/x/gw".into()]).unwrap(),
            Some(PathBuf::from("/x/gw"))
        );
        assert!(parse_args(&["--gateway".into()]).is_err());
        assert!(parse_args(&["--fast".into()]).is_err());
    }
}
