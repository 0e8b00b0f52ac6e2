//! `--plot FILE.svg`: RSS against container count, shoal measured against the article's
//! reference lines. Log-log axes, because Docker and a thread-per-container runtime grow by
//! megabytes per container and shoal by kilobytes. Plain SVG, no plotting dependency.

use super::density::DensityReport;

/// A labelled series of (containers, MB) points.
struct Series {
    label: String,
    colour: &'static str,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

/// The article's and the reference measurements, as functions of N.
fn reference_series(max: f64) -> Vec<Series> {
    let xs: Vec<f64> = [
        1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
    ]
    .into_iter()
    .filter(|&n| n <= max.max(100.0))
    .collect();
    let line = |f: &dyn Fn(f64) -> f64| xs.iter().map(|&n| (n, f(n))).collect::<Vec<_>>();
    vec![
        Series {
            label: "Docker (article: 113 MB daemon + 15 MB per container)".into(),
            colour: "#1d63ed",
            dashed: true,
            points: line(&|n| 113.0 + 15.0 * n),
        },
        Series {
            label: "Ocre/WAMR, running idle (measured: 10.5 MB + 8.4 MB per container)".into(),
            colour: "#d62728",
            dashed: true,
            points: line(&|n| 10.5 + 8.4 * n),
        },
        Series {
            label: "Ocre/WAMR, exited hello (article: 18.1 MB + 164 KB per container)".into(),
            colour: "#ff7f0e",
            dashed: true,
            points: line(&|n| 18.1 + 0.164 * (n - 1.0)),
        },
    ]
}

pub fn render_svg(report: &DensityReport) -> String {
    let measured: Vec<(f64, f64)> = report
        .checkpoints
        .iter()
        .filter(|c| c.containers > 0)
        .map(|c| (c.containers as f64, c.rss_kib as f64 / 1024.0))
        .collect();
    let max_n = measured.last().map_or(100.0, |p| p.0);
    let mut series = reference_series(max_n);
    series.push(Series {
        label: format!("shoal, measured ({:?} mode, {})", report.mode, report.image).to_lowercase(),
        colour: "#2ca02c",
        dashed: false,
        points: measured,
    });

    let (width, height) = (900.0, 560.0);
    let (left, right, top, bottom) = (80.0, 30.0, 40.0, 150.0);
    let x_max = max_n.max(100.0);
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(10.0, f64::max);
    let y_min = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(f64::MAX, f64::min)
        .max(1.0)
        / 2.0;
    let lx = |n: f64| left + (n.max(1.0).log10() / x_max.log10()) * (width - left - right);
    let ly = |mb: f64| {
        let span = y_max.log10() - y_min.log10();
        height - bottom - ((mb.max(y_min).log10() - y_min.log10()) / span) * (height - top - bottom)
    };

    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="24" font-size="16" text-anchor="middle">Resident memory against number of containers (log-log)</text>
"#,
        width / 2.0
    );
    // Grid: decades on both axes.
    let mut decade = 1.0;
    while decade <= x_max * 1.0001 {
        let x = lx(decade);
        svg += &format!(
            "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{decade}</text>\n",
            height - bottom,
            height - bottom + 16.0
        );
        decade *= 10.0;
    }
    let mut mb = 10f64.powf(y_min.log10().floor());
    while mb <= y_max * 1.0001 {
        if mb >= y_min {
            let y = ly(mb);
            svg += &format!(
                "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{} MB</text>\n",
                width - right,
                left - 6.0,
                y + 4.0,
                format_mb(mb)
            );
        }
        mb *= 10.0;
    }
    svg += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">containers</text>\n",
        (left + width - right) / 2.0,
        height - bottom + 34.0
    );
    for s in &series {
        let path: Vec<String> = s
            .points
            .iter()
            .map(|&(n, mb)| format!("{:.1},{:.1}", lx(n), ly(mb)))
            .collect();
        let dash = if s.dashed { " stroke-dasharray=\"6 4\"" } else { "" };
        svg += &format!(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{dash} points=\"{}\"/>\n",
            s.colour,
            path.join(" ")
        );
        if !s.dashed {
            for &(n, mb) in &s.points {
                svg += &format!(
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"/>\n",
                    lx(n),
                    ly(mb),
                    s.colour
                );
            }
        }
    }
    for (i, s) in series.iter().enumerate() {
        let y = height - bottom + 60.0 + i as f64 * 20.0;
        let dash = if s.dashed { " stroke-dasharray=\"6 4\"" } else { "" };
        svg += &format!(
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{}\" stroke-width=\"2\"{dash}/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            left + 30.0,
            s.colour,
            left + 38.0,
            y + 4.0,
            escape(&s.label)
        );
    }
    svg += "</svg>\n";
    svg
}

fn format_mb(mb: f64) -> String {
    if mb >= 1.0 {
        format!("{mb:.0}")
    } else {
        format!("{mb}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::density::{Checkpoint, Mode};

    /// A small report with the checkpoints of `--max 20`; the label has a character that
    /// needs escaping.
    fn report() -> DensityReport {
        let rows = [(0, 6_000), (1, 6_100), (2, 6_180), (3, 6_260), (5, 6_420), (10, 6_800), (20, 7_600)];
        DensityReport {
            mode: Mode::Idle,
            image: "a<b>&c.wasm".into(),
            checkpoints: rows
                .iter()
                .map(|&(containers, rss_kib)| Checkpoint {
                    containers,
                    rss_kib,
                    elapsed_ms: containers as f64 * 1.5,
                })
                .collect(),
            idle_cpu_percent: None,
            idle_seconds: 0.0,
            teardown: crate::procstat::Reclamation {
                baseline_kib: 6_000,
                peak_kib: 7_600,
                after_kib: 6_050,
                baseline_anon_kib: 1_000,
                after_anon_kib: 1_010,
            },
            lines_logged: 0,
        }
    }

    /// The plot is drawn by hand, so pin it byte for byte: a refactoring of the drawing
    /// steps must not move a pixel.
    #[test]
    fn svg_is_pinned() {
        let svg = render_svg(&report());
        assert_eq!(svg, include_str!("testdata/density-plot.svg"));
    }

    /// With no measured point the axes fall back to 100 containers and still draw.
    #[test]
    fn svg_without_measurements() {
        let mut report = report();
        report.checkpoints.truncate(1);
        let svg = render_svg(&report);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains(">100</text>"));
    }
}
