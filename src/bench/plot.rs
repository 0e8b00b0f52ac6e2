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

/// The measured curve: one point per checkpoint with containers, in MB.
fn measured_series(report: &DensityReport) -> Series {
    let points: Vec<(f64, f64)> = report
        .checkpoints
        .iter()
        .filter(|c| c.containers > 0)
        .map(|c| (c.containers as f64, c.rss_kib as f64 / 1024.0))
        .collect();
    Series {
        label: format!("shoal, measured ({:?} mode, {})", report.mode, report.image).to_lowercase(),
        colour: "#2ca02c",
        dashed: false,
        points,
    }
}

pub fn render_svg(report: &DensityReport) -> String {
    let measured = measured_series(report);
    let max_n = measured.points.last().map_or(100.0, |p| p.0);
    let mut series = reference_series(max_n);
    series.push(measured);
    let canvas = Canvas::new(&series, max_n);
    let mut svg = canvas.header();
    svg += &canvas.x_grid();
    svg += &canvas.y_grid();
    svg += &canvas.x_label();
    for s in &series {
        svg += &canvas.curve(s);
    }
    for (i, s) in series.iter().enumerate() {
        svg += &canvas.legend_entry(i, s);
    }
    svg += "</svg>\n";
    svg
}

/// The page and the two log scales: containers to x, MB to y. Both axes start a little
/// below the smallest value so that every line is visible.
struct Canvas {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    x_max: f64,
    y_min: f64,
    y_max: f64,
}

impl Canvas {
    fn new(series: &[Series], max_n: f64) -> Self {
        let values = || series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
        Canvas {
            width: 900.0,
            height: 560.0,
            left: 80.0,
            right: 30.0,
            top: 40.0,
            bottom: 150.0,
            x_max: max_n.max(100.0),
            y_max: values().fold(10.0, f64::max),
            y_min: values().fold(f64::MAX, f64::min).max(1.0) / 2.0,
        }
    }

    fn x(&self, n: f64) -> f64 {
        self.left + (n.max(1.0).log10() / self.x_max.log10()) * (self.width - self.left - self.right)
    }

    fn y(&self, mb: f64) -> f64 {
        let span = self.y_max.log10() - self.y_min.log10();
        self.height
            - self.bottom
            - ((mb.max(self.y_min).log10() - self.y_min.log10()) / span) * (self.height - self.top - self.bottom)
    }

    fn header(&self) -> String {
        let width = self.width;
        let height = self.height;
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="24" font-size="16" text-anchor="middle">Resident memory against number of containers (log-log)</text>
"#,
            width / 2.0
        )
    }

    /// Vertical grid lines at each decade of containers, labelled below the plot.
    fn x_grid(&self) -> String {
        let (top, baseline) = (self.top, self.height - self.bottom);
        let mut svg = String::new();
        let mut decade = 1.0;
        while decade <= self.x_max * 1.0001 {
            let x = self.x(decade);
            svg += &format!(
                "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{decade}</text>\n",
                baseline,
                baseline + 16.0
            );
            decade *= 10.0;
        }
        svg
    }

    /// Horizontal grid lines at each decade of MB inside the range, labelled on the left.
    fn y_grid(&self) -> String {
        let left = self.left;
        let mut svg = String::new();
        let mut mb = 10f64.powf(self.y_min.log10().floor());
        while mb <= self.y_max * 1.0001 {
            if mb >= self.y_min {
                let y = self.y(mb);
                svg += &format!(
                    "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{} MB</text>\n",
                    self.width - self.right,
                    left - 6.0,
                    y + 4.0,
                    format_mb(mb)
                );
            }
            mb *= 10.0;
        }
        svg
    }

    fn x_label(&self) -> String {
        format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">containers</text>\n",
            (self.left + self.width - self.right) / 2.0,
            self.height - self.bottom + 34.0
        )
    }

    /// One series as a polyline; measured (solid) series also get a dot per point.
    fn curve(&self, s: &Series) -> String {
        let path: Vec<String> = s
            .points
            .iter()
            .map(|&(n, mb)| format!("{:.1},{:.1}", self.x(n), self.y(mb)))
            .collect();
        let mut svg = format!(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} points=\"{}\"/>\n",
            s.colour,
            dash(s),
            path.join(" ")
        );
        if !s.dashed {
            for &(n, mb) in &s.points {
                svg += &format!(
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"/>\n",
                    self.x(n),
                    self.y(mb),
                    s.colour
                );
            }
        }
        svg
    }

    /// The `i`th line of the legend under the plot: a stroke sample and the label.
    fn legend_entry(&self, i: usize, s: &Series) -> String {
        let left = self.left;
        let y = self.height - self.bottom + 60.0 + i as f64 * 20.0;
        format!(
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{}\" stroke-width=\"2\"{}/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            left + 30.0,
            s.colour,
            dash(s),
            left + 38.0,
            y + 4.0,
            escape(&s.label)
        )
    }
}

fn dash(s: &Series) -> &'static str {
    if s.dashed {
        " stroke-dasharray=\"6 4\""
    } else {
        ""
    }
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
        let rows = [
            (0, 6_000),
            (1, 6_100),
            (2, 6_180),
            (3, 6_260),
            (5, 6_420),
            (10, 6_800),
            (20, 7_600),
        ];
        DensityReport {
            mode: Mode::Idle,
            image: "a<b>&c.wasm".into(),
            guest: "minimal: built-in a<b>&c.wasm".into(),
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
            heap_per_container_bytes: None,
            task_future_bytes: 0,
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
