//! How the client commands print: aligned tables, memory and uptime in human units, and
//! wire times as RFC 3339. Shared so that `ps`, `top`, `stats` and `ls` line up alike.

use std::time::{Duration, SystemTime};

/// Print `rows` (the first is the header) in columns three spaces apart; the last cell of
/// a row is not padded, so no line ends in blanks.
pub fn print_table(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        println!("{}", line.trim_end());
    }
}

/// A header row from its titles.
pub fn header(titles: &[&str]) -> Vec<String> {
    titles.iter().map(|t| (*t).to_owned()).collect()
}

/// A byte count in binary units with one decimal (`64.0 KiB`, `3.0 MiB`, `0 B`), by the
/// `bytesize` crate (it cost no measurable binary size; see README: Dependencies).
pub fn human_bytes(bytes: u64) -> String {
    bytesize::ByteSize(bytes).display().iec().to_string()
}

pub fn human_secs(secs: f64) -> String {
    let secs = secs as u64;
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

/// A wire time (seconds since the Unix epoch) as RFC 3339 with milliseconds.
pub fn rfc3339(time: f64) -> String {
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(time.max(0.0));
    humantime::format_rfc3339_millis(when).to_string()
}

/// `value` as indented JSON (`--format json`).
pub fn to_json_pretty<T: serde::Serialize>(value: &T) -> Result<String, crate::control::ControlError> {
    Ok(serde_json::to_string_pretty(value)?)
}

/// Flush stdout after each streamed item, so a pipe sees it at once; a closed pipe is
/// the reader's choice, not an error.
pub fn flush() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

/// Print a stream the stack sends until it closes it (`events`, `topics tail`): each item
/// `pick` takes from a reply, as its line or, with `json`, as one JSON object per line,
/// flushed at once; a reader that fell behind is warned how many `what` it missed.
pub fn print_stream<T: serde::Serialize + std::fmt::Display>(
    client: &crate::control::Client,
    request: super::Request,
    what: &str,
    json: bool,
    pick: impl Fn(crate::control::protocol::Reply) -> Option<T>,
) -> Result<std::process::ExitCode, crate::control::ControlError> {
    use crate::control::protocol::Reply;
    client.stream(request, |reply| {
        let item = match reply {
            Reply::Missed(n) => {
                tracing::warn!("{n} {what} skipped: this reader fell behind");
                None
            }
            other => pick(other),
        };
        match item {
            Some(item) if json => match serde_json::to_string(&item) {
                Ok(line) => println!("{line}"),
                Err(e) => tracing::warn!("one of the {what} could not be written as JSON: {e}"),
            },
            Some(item) => println!("{item}"),
            None => {}
        }
        flush();
        true
    })?;
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(64 * 1024), "64.0 KiB");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
        assert_eq!(human_secs(3725.0), "1h2m");
        assert_eq!(rfc3339(1_795_860_000.0), "2026-11-28T10:00:00.000Z");
    }
}
