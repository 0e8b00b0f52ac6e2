//! `docker compose up`-style output: `name | line`, names padded to one width, a colour per
//! container when writing to a terminal.
//!
//! Guest text is shown, never obeyed: control characters are escaped
//! ([`crate::logs::escape_controls`]) and long lines clipped ([`crate::logs::clip`]), on a
//! terminal and in a detached stack's log file alike, which this also rotates by size.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use crate::logs::rotate::RotatingLog;
use crate::logs::{clip, escape_controls, LogSink, Stream};

const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

pub struct TerminalLog {
    width: usize,
    colours: HashMap<String, &'static str>,
    use_colour: bool,
    out: Mutex<std::io::Stdout>,
    /// Detached: stdout is the project's log file, rotated by size.
    rotation: Option<Mutex<RotatingLog>>,
}

impl TerminalLog {
    /// `names` fixes the prefix width and the colour of each container.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>, no_colour: bool) -> Self {
        let mut width = 0;
        let mut colours = HashMap::new();
        for (i, name) in names.into_iter().enumerate() {
            width = width.max(name.len());
            colours.insert(name.to_string(), COLOURS[i % COLOURS.len()]);
        }
        let use_colour = !no_colour && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
        TerminalLog {
            width,
            colours,
            use_colour,
            out: Mutex::new(std::io::stdout()),
            rotation: None,
        }
    }

    /// Stdout is the log file `rotation` rotates.
    pub fn rotating(mut self, rotation: RotatingLog) -> Self {
        self.rotation = Some(Mutex::new(rotation));
        self
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.use_colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

impl LogSink for TerminalLog {
    fn line(&self, container: &str, stream: Stream, text: &str) {
        // shoal's own lines about a container become events with fields when the log is
        // JSON or the journal; the guests' output is user data and stays a prefixed line.
        if crate::telemetry::structured() && matches!(stream, Stream::System | Stream::Warning) {
            let project = crate::telemetry::project();
            match stream {
                Stream::Warning => tracing::warn!(container, project, "{text}"),
                _ => tracing::info!(container, project, "{text}"),
            }
            return;
        }
        let colour = self.colours.get(container).copied().unwrap_or("0");
        let clipped = clip(text);
        let text = escape_controls(&clipped);
        let line = match stream {
            Stream::Stdout | Stream::Stderr => {
                let prefix = format!("{container:<width$} | ", width = self.width);
                format!("{}{text}", self.paint(colour, &prefix))
            }
            Stream::System => format!("{} {text}", self.paint(colour, container)),
            Stream::Warning => {
                let prefix = format!("{container:<width$} | ", width = self.width);
                format!(
                    "{}{}",
                    self.paint(colour, &prefix),
                    self.paint("33;1", &format!("warning: {text}"))
                )
            }
        };
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        // A closed stdout (a pipe to `head`) must not take the stack down.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
        if let Some(rotation) = &self.rotation {
            let mut rotation = rotation.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = rotation.wrote(line.len() + 1) {
                let _ = writeln!(out, "{container} | warning: {e}");
            }
        }
    }
}

/// `shoal logs --no-log-prefix`: each line's text alone on stdout.
pub struct BareLog;

impl LogSink for BareLog {
    fn line(&self, _container: &str, _stream: Stream, text: &str) {
        let mut out = std::io::stdout().lock();
        // A closed stdout (a pipe to `head`) ends nothing.
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}
