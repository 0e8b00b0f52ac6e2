//! Diagnostics: what the user sees when the file is wrong.
//!
//! Every problem is collected (not returned at the first one) so that one `shoal up` shows
//! everything to fix. The rendering follows rustc/uv: lowercase severity, `file:line:col`, then
//! an indented `hint:` line.

use std::fmt;

use super::model::Location;

/// How bad a diagnostic is. Errors stop the load; warnings are shown and the load goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem found in the compose file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Where in the file; `None` for problems with no single place (e.g. the file is empty).
    pub location: Option<Location>,
    /// Dotted key path, e.g. `containers.collector.capabilities`, for tools that filter.
    pub key: String,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(location: Option<Location>, key: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            location,
            key: key.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(location: Option<Location>, key: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            location,
            key: key.into(),
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint (builder style).
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a hint only when there is one (e.g. a did-you-mean that may find nothing).
    pub fn with_hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.severity)?;
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl Diagnostic {
    /// The diagnostic with the offending line of `source` (the file's text) and a caret
    /// under the column, as rustc shows it; coloured when `colour` (a terminal). Without a
    /// location, or when the line is not in `source`, it is the plain [`Display`] form,
    /// which is also what the golden files hold (they must not depend on a terminal).
    ///
    /// [`Display`]: fmt::Display
    pub fn render_with_source(&self, source: Option<&str>, colour: bool) -> String {
        use anstyle::{AnsiColor, Style};
        let style = |s: Style| if colour { s } else { Style::new() };
        let severity = style(match self.severity {
            Severity::Error => AnsiColor::Red.on_default().bold(),
            Severity::Warning => AnsiColor::Yellow.on_default().bold(),
        });
        let gutter = style(AnsiColor::Blue.on_default().bold());
        let mut out = format!("{severity}{}{severity:#}: ", self.severity);
        if let Some(loc) = &self.location {
            out.push_str(&format!("{loc}: "));
        }
        out.push_str(&self.message);
        let excerpt = self.location.as_ref().and_then(|loc| {
            let line = source?.lines().nth(usize::try_from(loc.line).ok()?.checked_sub(1)?)?;
            Some((loc.line, loc.column, line))
        });
        if let Some((number, column, line)) = excerpt {
            let width = number.to_string().len();
            let pad = " ".repeat(width);
            // Tabs keep their width under the caret; other characters count one column.
            let before: String = line
                .chars()
                .take(usize::try_from(column.saturating_sub(1)).unwrap_or(0))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!("\n{pad} {gutter}|{gutter:#}"));
            out.push_str(&format!("\n{gutter}{number} |{gutter:#} {line}"));
            out.push_str(&format!("\n{pad} {gutter}|{gutter:#} {before}{severity}^{severity:#}"));
        }
        if let Some(hint) = &self.hint {
            out.push_str(&format!("\n  hint: {hint}"));
        }
        out
    }
}

/// Renders diagnostics one per line (hints on their own line), as the CLI prints them.
pub fn render_diagnostics(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    out
}

/// The closest candidate to `word`, for "did you mean" hints. Uses Jaro-Winkler similarity
/// because typos in keys are mostly transpositions and dropped letters near the end.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut best: Option<(&'a str, f64)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(word, c);
        if score >= 0.8 && best.is_none_or(|(_, s)| score > s) {
            best = Some((c, score));
        }
    }
    best.map(|(c, _)| c)
}

/// `did you mean `x`?` hint text, if any candidate is close.
pub fn did_you_mean_hint<'a, I>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    did_you_mean(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn display_with_location_and_hint() {
        let d = Diagnostic::error(
            Some(Location {
                file: PathBuf::from("shoal.yaml"),
                line: 7,
                column: 5,
            }),
            "containers.collector.capabilites",
            "unknown key `capabilites` in container `collector`",
        )
        .with_hint("did you mean `capabilities`?");
        assert_eq!(
            d.to_string(),
            "error: shoal.yaml:7:5: unknown key `capabilites` in container `collector`\n  hint: did you mean `capabilities`?"
        );
    }

    #[test]
    fn the_excerpt_shows_the_line_and_a_caret_under_the_column() {
        let d = Diagnostic::error(
            Some(Location {
                file: "s.yaml".into(),
                line: 2,
                column: 5,
            }),
            "containers.a.imgae",
            "unknown key `imgae`",
        )
        .with_hint("did you mean `image`?");
        let text = d.render_with_source(Some("containers:\n    imgae: x\n"), false);
        assert_eq!(
            text,
            "error: s.yaml:2:5: unknown key `imgae`\n  |\n2 |     imgae: x\n  |     ^\n  hint: did you mean `image`?"
        );
        // No colour codes unless asked; with colour, the same text around them.
        assert!(!text.contains('\x1b'));
        assert!(d
            .render_with_source(Some("containers:\n    imgae: x\n"), true)
            .contains('\x1b'));
        // A line past the end of the text: the plain form.
        assert_eq!(d.render_with_source(Some(""), false), d.to_string());
    }

    #[test]
    fn display_warning_without_location() {
        let d = Diagnostic::warning(None, "", "something");
        assert_eq!(d.to_string(), "warning: something");
    }

    #[test]
    fn did_you_mean_finds_close_words() {
        let keys = ["image", "capabilities", "mounts"];
        assert_eq!(did_you_mean("capabilites", keys), Some("capabilities"));
        assert_eq!(did_you_mean("imgae", keys), Some("image"));
        assert_eq!(did_you_mean("zzzz", keys), None);
    }
}
