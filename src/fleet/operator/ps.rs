//! `shoal fleet ps DEVICE [--format json]`: one device's containers, from its report.

use crate::fleet::report::Report;

/// The containers of `report` as a table.
pub fn table(report: &Report) -> String {
    let mut lines = vec![[
        "NAME".to_string(),
        "STATE".into(),
        "RESTARTS".into(),
        "MEMORY".into(),
        "LAST ERROR".into(),
    ]];
    for c in &report.containers {
        lines.push([
            c.name.clone(),
            c.state.clone(),
            c.restarts.to_string(),
            crate::spec::units::ByteSize(c.memory_bytes).to_string(),
            c.last_error.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for line in &lines {
        let mut text = String::new();
        for (i, cell) in line.iter().enumerate() {
            text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}
