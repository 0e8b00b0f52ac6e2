//! shoal's own log lines (not the guests' output, which is user data and stays prefixed
//! on stdout) go through `tracing`, so that an operator picks the level (`RUST_LOG`,
//! `--log-level`), the form (`--log-format text|json`) and, under systemd, gets journal
//! entries with `CONTAINER=` / `PROJECT=` fields instead of flat text.
//!
//! The text form keeps the wording shoal always had (`warning: ...`, `error: ...`, plain
//! lines for information) so scripts reading stderr see no change.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// How shoal's own lines are written.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    /// Plain lines on stderr (`warning: ...`), as shoal always wrote them
    #[default]
    Text,
    /// One JSON object per line on stderr: `level`, `message` and fields such as `container`
    Json,
}

/// Where the lines went: chosen once at start, read by [`structured`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    Text,
    Json,
    Journald,
}

/// Set when lines carry fields (JSON, journald): container system lines then go through
/// `tracing` with a `container` field instead of the terminal prefix.
static STRUCTURED: AtomicBool = AtomicBool::new(false);
static PROJECT: OnceLock<String> = OnceLock::new();

/// True when shoal's lines are JSON or journal entries.
pub fn structured() -> bool {
    STRUCTURED.load(Ordering::Relaxed)
}

/// Record the project this process serves, for the `project` field of container lines.
pub fn set_project(name: &str) {
    let _ = PROJECT.set(name.to_owned());
}

/// The project this process serves, or "" before one is known.
pub fn project() -> &'static str {
    PROJECT.get().map(String::as_str).unwrap_or("")
}

/// True when systemd connected our stderr to the journal: `JOURNAL_STREAM` names the
/// device and inode of stderr (systemd.exec(5)); a child whose stderr was redirected
/// keeps the variable but not the stream, so both must match.
pub fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    // SAFETY: fstat writes into the zeroed struct we own; fd 2 may be closed (then -1).
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(2, &mut stat) } != 0 {
        return false;
    }
    dev.parse::<u64>().is_ok_and(|d| d == stat.st_dev) && ino.parse::<u64>().is_ok_and(|i| i == stat.st_ino)
}

/// Which sink `init` would use for `format`: an explicit `json` wins; otherwise the
/// journal when stderr is connected to it.
pub fn choose(format: Option<LogFormat>, journal: bool) -> Sink {
    match format {
        Some(LogFormat::Json) => Sink::Json,
        Some(LogFormat::Text) => Sink::Text,
        None if journal => Sink::Journald,
        None => Sink::Text,
    }
}

/// The filter: `RUST_LOG` when set (any `tracing` directive), else `level`, else `info`;
/// the last two with [`QUIET_WASI`].
fn filter(level: Option<&str>) -> EnvFilter {
    if let Ok(directives) = std::env::var("RUST_LOG") {
        if let Ok(filter) = EnvFilter::try_new(&directives) {
            return filter;
        }
        eprintln!("warning: RUST_LOG={directives:?} is not a valid filter; using `info`");
    }
    let filter = EnvFilter::try_new(level.unwrap_or("info")).unwrap_or_else(|_| EnvFilter::new("info"));
    match QUIET_WASI.parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

/// wasmtime-wasi opens an `info` span around every WASI call a guest makes, with its
/// arguments formatted: with the default filter that was a span, a few allocations and a
/// string per `clock_time_get`: 12,000 of the 37,000 instructions of a delivery in `shoal
/// bench messaging` (callgrind), whose echo guests read the clock for every message. shoal never shows those spans; its warnings still
/// pass. `RUST_LOG` can turn them back on.
const QUIET_WASI: &str = "wasmtime_wasi=warn";

/// Install the subscriber for this process; returns the sink chosen. Called once, first
/// thing after the arguments are parsed.
pub fn init(format: Option<LogFormat>, level: Option<&str>) -> Sink {
    let sink = choose(format, stderr_is_journal());
    let registry = tracing_subscriber::registry().with(filter(level));
    let installed = match sink {
        Sink::Journald => match tracing_journald::layer() {
            Ok(layer) => registry.with(layer).try_init().map(|_| Sink::Journald),
            // No journal socket after all (a container without /run/systemd): plain text.
            Err(_) => registry.with(text_layer()).try_init().map(|_| Sink::Text),
        },
        Sink::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init()
            .map(|_| Sink::Json),
        Sink::Text => registry.with(text_layer()).try_init().map(|_| Sink::Text),
    };
    let sink = installed.unwrap_or(sink);
    STRUCTURED.store(sink != Sink::Text, Ordering::Relaxed);
    sink
}

fn text_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .event_format(PlainText)
        .with_writer(std::io::stderr)
}

/// `error: ...`, `warning: ...`, plain information, `debug: ...`: the wording shoal's
/// stderr always had. Fields other than the message are left out (the message names the
/// container already); JSON and the journal carry them.
struct PlainText;

impl<S, N> FormatEvent<S, N> for PlainText
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let prefix = match *event.metadata().level() {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            Level::INFO => "",
            Level::DEBUG => "debug: ",
            Level::TRACE => "trace: ",
        };
        let mut message = MessageOnly(String::new());
        event.record(&mut message);
        writeln!(writer, "{prefix}{}", message.0)
    }
}

struct MessageOnly(String);

impl tracing::field::Visit for MessageOnly {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            use std::fmt::Write;
            let _ = write!(self.0, "{value:?}");
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_filter_keeps_wasi_call_spans_out() {
        // RUST_LOG would replace the whole filter; these tests do not set it.
        if std::env::var_os("RUST_LOG").is_some() {
            return;
        }
        for level in [None, Some("debug")] {
            let text = filter(level).to_string();
            assert!(text.contains(QUIET_WASI), "{level:?}: {text}");
        }
    }

    #[test]
    fn the_journal_is_chosen_only_when_stderr_is_the_journal_and_no_format_is_asked() {
        assert_eq!(choose(None, true), Sink::Journald);
        assert_eq!(choose(None, false), Sink::Text);
        assert_eq!(choose(Some(LogFormat::Json), true), Sink::Json);
        assert_eq!(choose(Some(LogFormat::Text), true), Sink::Text);
    }

    #[test]
    fn a_journal_stream_naming_another_file_is_not_our_stderr() {
        // The test's stderr is not (0, 0); a stale variable from a parent must not count.
        std::env::set_var("JOURNAL_STREAM", "0:0");
        assert!(!stderr_is_journal());
        std::env::set_var("JOURNAL_STREAM", "garbage");
        assert!(!stderr_is_journal());
        std::env::remove_var("JOURNAL_STREAM");
        assert!(!stderr_is_journal());
    }
}
