//! `cargo xtask fuzz`: run the cargo-fuzz targets in fuzz/ for a bounded time each.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::util::{self, Failure};

pub const NOTES: &str =
    "  Runs each libFuzzer target of fuzz/fuzz_targets/ (default: every one, 30 s each) with
  `RUSTC_BOOTSTRAP=1 cargo fuzz run <target> -- -max_total_time=<seconds>`: cargo-fuzz needs
  nightly compiler flags, which RUSTC_BOOTSTRAP=1 allows on the stable toolchain. The corpus
  is fuzz/corpus/<target>/ (seeds are the *.json / *.txt files; the fuzzer adds the rest).
  Fails when a target crashes, naming the input saved in fuzz/artifacts/<target>/.
  Needs cargo-fuzz: cargo install cargo-fuzz --locked
  --sanitizer none   build without AddressSanitizer (faster; use if ASan does not build)
  Example: cargo xtask fuzz customer_body --seconds 60
  Reproduce a crash: RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>
";

const DEFAULT_SECONDS: u64 = 30;
const INSTALL: &str = "cargo install cargo-fuzz --locked";

/// The parsed command line.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    target: Option<String>,
    seconds: u64,
    sanitizer: Option<String>,
}

pub fn run(args: &[String]) -> Result<(), Failure> {
    if args.iter().any(|a| matches!(a.as_str(), "-h" | "--help")) {
        eprint!("Usage: cargo xtask fuzz [TARGET] [--seconds N] [--sanitizer NAME]\n\n{NOTES}");
        return Ok(());
    }
    let options = parse_args(args)?;
    let fuzz_dir = util::workspace_root().join("fuzz");
    let available = targets(&fuzz_dir)?;
    let chosen = match &options.target {
        Some(target) if available.contains(target) => vec![target.clone()],
        Some(target) => {
            return Err(Failure::new(format!(
                "no fuzz target `{target}`; there are: {}",
                available.join(", ")
            )));
        }
        None => available,
    };

    util::step("cargo-fuzz");
    check_cargo_fuzz()?;

    let mut crashes = Vec::new();
    for target in &chosen {
        let artifacts = fuzz_dir.join("artifacts").join(target);
        let started = SystemTime::now();
        let mut command = util::cargo();
        command.env("RUSTC_BOOTSTRAP", "1").args(["fuzz", "run"]);
        if let Some(sanitizer) = &options.sanitizer {
            command.args(["--sanitizer", sanitizer]);
        }
        command
            .arg(target)
            .arg("--")
            .arg(format!("-max_total_time={}", options.seconds));
        util::step(&format!(
            "RUSTC_BOOTSTRAP=1 cargo fuzz run {target}{} -- -max_total_time={}",
            options
                .sanitizer
                .as_deref()
                .map(|s| format!(" --sanitizer {s}"))
                .unwrap_or_default(),
            options.seconds
        ));
        let status = command
            .status()
            .map_err(|e| Failure::new(format!("could not run cargo fuzz: {e}")))?;
        if status.success() {
            continue;
        }
        let found = written_since(&artifacts, started);
        if found.is_empty() {
            return Err(Failure::from_status(
                &format!("cargo fuzz run {target}"),
                status,
            ));
        }
        crashes.push(crash_report(target, &found));
    }
    if !crashes.is_empty() {
        return Err(Failure::new(crashes.join("\n")));
    }
    util::step(&format!(
        "no crash in {} ({} s each)",
        chosen.join(", "),
        options.seconds
    ));
    Ok(())
}

fn parse_args(args: &[String]) -> Result<Options, Failure> {
    let mut options = Options {
        target: None,
        seconds: DEFAULT_SECONDS,
        sanitizer: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .ok_or_else(|| Failure::new(format!("{name} needs a value")))
        };
        match flag {
            "--seconds" => {
                let text = value("--seconds")?;
                options.seconds = text.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    Failure::new(format!("--seconds wants a positive number, not `{text}`"))
                })?;
            }
            "--sanitizer" | "-s" => options.sanitizer = Some(value("--sanitizer")?),
            other if other.starts_with('-') => {
                return Err(Failure::new(format!(
                    "unknown option `{other}` (see cargo xtask fuzz --help)"
                )));
            }
            target if options.target.is_none() => options.target = Some(target.to_owned()),
            extra => {
                return Err(Failure::new(format!(
                    "one target at a time (or none for all), not also `{extra}`"
                )));
            }
        }
    }
    Ok(options)
}

/// The targets: the names of fuzz/fuzz_targets/*.rs, sorted.
fn targets(fuzz_dir: &Path) -> Result<Vec<String>, Failure> {
    let dir = fuzz_dir.join("fuzz_targets");
    let entries = fs::read_dir(&dir)
        .map_err(|e| Failure::new(format!("cannot list {}: {e}", dir.display())))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_owned()))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(Failure::new(format!("no fuzz target in {}", dir.display())));
    }
    Ok(names)
}

fn check_cargo_fuzz() -> Result<(), Failure> {
    let output = util::cargo().args(["fuzz", "--version"]).output();
    match output {
        Ok(out) if out.status.success() => {
            eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());
            Ok(())
        }
        _ => Err(Failure::new(missing_cargo_fuzz())),
    }
}

fn missing_cargo_fuzz() -> String {
    format!("cargo-fuzz is not installed (`cargo fuzz` does not run); install it with `{INSTALL}`")
}

/// The files of `dir` written since `since` (libFuzzer overwrites an input it saved before,
/// so a new name is not enough); none when `dir` does not exist.
fn written_since(dir: &Path, since: SystemTime) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| {
                    entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|modified| modified >= since)
                })
                .map(|entry| entry.path())
                .filter(|path| path.is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn crash_report(target: &str, artifacts: &[PathBuf]) -> String {
    let root = util::workspace_root();
    let mut report = format!("fuzz target `{target}` crashed; the input is saved in:");
    for path in artifacts {
        let shown = path.strip_prefix(&root).unwrap_or(path);
        report.push_str(&format!(
            "\n  {}\n  reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run {target} {}",
            shown.display(),
            shown.display()
        ));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_to_every_target_for_30_seconds() {
        assert_eq!(
            parse_args(&[]).unwrap(),
            Options {
                target: None,
                seconds: 30,
                sanitizer: None
            }
        );
    }

    #[test]
    fn takes_a_target_seconds_and_a_sanitizer() {
        let options = parse_args(&strings(&[
            "query_string",
            "--seconds",
            "5",
            "--sanitizer=none",
        ]))
        .unwrap();
        assert_eq!(options.target.as_deref(), Some("query_string"));
        assert_eq!(options.seconds, 5);
        assert_eq!(options.sanitizer.as_deref(), Some("none"));
        assert_eq!(parse_args(&strings(&["--seconds=7"])).unwrap().seconds, 7);
    }

    #[test]
    fn refuses_bad_arguments() {
        for bad in [
            &["--seconds"][..],
            &["--seconds", "0"],
            &["--seconds", "soon"],
            &["--frobnicate"],
            &["a", "b"],
        ] {
            assert!(parse_args(&strings(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn finds_the_workspace_targets() {
        let found = targets(&util::workspace_root().join("fuzz")).unwrap();
        assert!(found.contains(&"customer_body".to_owned()), "{found:?}");
        assert!(found.contains(&"query_string".to_owned()), "{found:?}");
    }

    #[test]
    fn only_inputs_written_during_the_run_are_reported() {
        let dir = util::target_dir().join("xtask-fuzz-test");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("old"), "x").unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(3600);
        assert!(written_since(&dir, later).is_empty());
        let found = written_since(&dir, SystemTime::UNIX_EPOCH);
        assert_eq!(found, [dir.join("old")]);
        assert!(written_since(&dir.join("missing"), SystemTime::UNIX_EPOCH).is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn says_how_to_install_cargo_fuzz() {
        assert!(missing_cargo_fuzz().contains("cargo install cargo-fuzz --locked"));
    }

    #[test]
    fn a_crash_report_names_the_input_and_how_to_rerun_it() {
        let path = util::workspace_root().join("fuzz/artifacts/query_string/crash-abc");
        let report = crash_report("query_string", &[path]);
        assert!(
            report.contains("fuzz/artifacts/query_string/crash-abc"),
            "{report}"
        );
        assert!(
            report.contains("cargo fuzz run query_string fuzz/artifacts/query_string/crash-abc")
        );
    }
}
