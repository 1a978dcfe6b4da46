//! `--profile`: a CPU profile of the gateway process during each scenario, by Linux `perf`
//! (Debian's `linux-perf`), with its top frames written beside the summary. The baselines run
//! while the gateway idles, so what the profile holds is the gateway's own work.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

/// How many frames of each view the text report keeps.
const TOP: usize = 25;
/// Where a frame's (long, generic) name is cut.
const WIDTH: usize = 160;

/// A `perf record` attached to the gateway for one scenario.
pub struct Profile {
    perf: Child,
    data: PathBuf,
    report: PathBuf,
}

impl Profile {
    /// Starts sampling `pid` (997 Hz, with call chains) into `<out>/profile-<key>.data`.
    pub fn start(pid: u32, out: &Path, key: &str) -> anyhow::Result<Self> {
        let data = out.join(format!("profile-{key}.data"));
        let perf = Command::new("perf")
            .args(["record", "-F", "997", "-g", "--quiet", "-p"])
            .arg(pid.to_string())
            .arg("-o")
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context(
                "`perf` did not start: install Debian's linux-perf, or run without --profile",
            )?;
        // perf needs a moment to attach; what it misses is warm-up anyway.
        std::thread::sleep(Duration::from_millis(200));
        Ok(Self {
            perf,
            data,
            report: out.join(format!("profile-{key}.txt")),
        })
    }

    /// Stops sampling and writes the top frames (by own time, and by shared object) to
    /// `<out>/profile-<key>.txt`; answers that file's path.
    pub fn finish(mut self) -> anyhow::Result<PathBuf> {
        // SIGINT makes perf write its data out and exit.
        let _ = Command::new("kill")
            .args(["-INT", &self.perf.id().to_string()])
            .status();
        self.perf.wait()?;
        let mut text = String::new();
        for (title, sort) in [
            ("shared objects", "dso"),
            ("frames, by own time", "dso,symbol"),
        ] {
            let output = Command::new("perf")
                .args([
                    "report",
                    "--stdio",
                    "--no-children",
                    "-g",
                    "none",
                    "--sort",
                    sort,
                ])
                .arg("-i")
                .arg(&self.data)
                .stderr(Stdio::null())
                .output()
                .context("perf report")?;
            let report = String::from_utf8_lossy(&output.stdout);
            let samples = report
                .lines()
                .find(|l| l.starts_with("# Samples:"))
                .unwrap_or("# Samples: ?")
                .trim_start_matches("# ");
            text.push_str(&format!("== {title} ({samples})\n"));
            for line in report
                .lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .take(TOP)
            {
                // perf pads the symbol column to its longest (Rust) name.
                let line: Vec<&str> = line.split_whitespace().collect();
                let line: String = line.join(" ").chars().take(WIDTH).collect();
                text.push_str(&line);
                text.push('\n');
            }
            text.push('\n');
        }
        std::fs::write(&self.report, text)?;
        Ok(self.report)
    }
}
