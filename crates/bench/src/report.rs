//! The bench's outputs: the table on stdout, `summary.json` and `ratios.svg`.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use crate::bench::Summary;

pub fn write(summary: &Summary, out: &Path) -> anyhow::Result<()> {
    print_table(summary);
    let json = out.join("summary.json");
    std::fs::write(&json, serde_json::to_string_pretty(summary)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let svg = out.join("ratios.svg");
    chart(summary, &svg)?;
    println!("\nwrote {} and {}", json.display(), svg.display());
    Ok(())
}

fn print_table(summary: &Summary) {
    println!(
        "\n{} run: {} customers seeded in {:.1} s; {} connections; load generator: {}",
        summary.mode,
        summary.seeded_customers,
        summary.seed_seconds,
        summary.connections,
        summary.load_generator
    );
    println!(
        "\n| {:<50} | {:>9} | {:>9} | {:>9} | {:<38} | {:>9} | {:>9} | {:>6} | {:>6} | {:>10} |",
        "scenario",
        "req/s",
        "p50 ms",
        "p99 ms",
        "baseline",
        "req/s",
        "p50 ms",
        "ratio",
        "errors",
        "cpu ms/req"
    );
    println!(
        "|{:-<52}|{:->11}|{:->11}|{:->11}|{:-<40}|{:->11}|{:->11}|{:->8}|{:->8}|{:->12}|",
        "", "", "", "", "", "", "", "", "", ""
    );
    for s in &summary.scenarios {
        println!(
            "| {:<50} | {:>9.0} | {:>9.2} | {:>9.2} | {:<38} | {:>9.0} | {:>9.2} | {:>6.2} | {:>6} | {:>10.3} |",
            s.name,
            s.gateway.rps,
            s.gateway.p50_ms,
            s.gateway.p99_ms,
            s.baseline_name,
            s.baseline.rps,
            s.baseline.p50_ms,
            s.ratio,
            s.gateway.errors + s.baseline.errors,
            s.gateway_cpu_ms_per_request.unwrap_or_default()
        );
    }
    println!(
        "\n(ratio: gateway req/s over baseline req/s; for the 1,000-create lines, 200 ms over the gateway's wall time;\n cpu ms/req: the gateway process's CPU time per request it served)"
    );
    println!(
        "gateway start-up: {:.1} ms; peak RSS: {}",
        summary.startup_ms,
        summary
            .peak_rss_mib
            .map_or("unknown".to_owned(), |m| format!("{m:.1} MiB"))
    );
    println!("\ntargets (reported, not enforced):");
    for t in &summary.targets {
        println!(
            "  [{}] {:<58} {:>22}  target {}",
            if t.met { "met" } else { "MISSED" },
            t.what,
            t.measured,
            t.target
        );
    }
}

/// One bar per scenario: its ratio to the baseline, 1.0 being "as fast as the baseline".
fn chart(summary: &Summary, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1000, 120 + 40 * summary.scenarios.len() as u32))
        .into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let n = summary.scenarios.len() as i32;
    let max = summary
        .scenarios
        .iter()
        .map(|s| s.ratio)
        .fold(1.2_f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("pos-gateway vs same-run baselines ({} run)", summary.mode),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(330)
        .build_cartesian_2d(0.0..max, (0..n).into_segmented())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let names: Vec<String> = summary.scenarios.iter().map(|s| s.name.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc("ratio to baseline (higher is better; 1.0 = baseline)")
        .y_label_formatter(&|segment| match segment {
            SegmentValue::CenterOf(i) => usize::try_from(*i)
                .ok()
                .and_then(|i| names.get(i))
                .cloned()
                .unwrap_or_default(),
            _ => String::new(),
        })
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .draw_series(summary.scenarios.iter().enumerate().map(|(i, s)| {
            let i = i32::try_from(i).unwrap_or_default();
            let color = if s.ratio >= 0.6 {
                BLUE.mix(0.6)
            } else {
                RED.mix(0.6)
            };
            Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(i)),
                    (s.ratio, SegmentValue::Exact(i + 1)),
                ],
                color.filled(),
            )
        }))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Exact(n))],
            BLACK.stroke_width(2),
        )))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}
