//! The compose file as the command line meets it: which files a command means
//! ([`crate::spec::ComposeFiles`], resolved by `FileArgs::compose_files`) and loading them
//! with their diagnostics printed.

use crate::check;
use crate::images::ImageStore;
use crate::runtime::RuntimeConfig;
use crate::spec::{ComposeFiles, Diagnostic, Stack};

/// Parse and validate, then check the images' imports against the grants and the topic
/// wiring; print diagnostics to stderr. `None` when the stack must not run.
/// `runtime` is the engine settings precompiled images are loaded with, as `up` would.
pub(crate) fn load_stack(
    images: &ImageStore,
    runtime: &RuntimeConfig,
    input: &ComposeFiles,
    strict: bool,
) -> Option<Stack> {
    let (stack, diagnostics) = match check::load_checked(input.clone(), images, &check::Engines::from_config(runtime)) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            print_diagnostics(&diagnostics);
            report_invalid(&shown(input), &diagnostics);
            return None;
        }
    };
    print_diagnostics(&diagnostics);
    let warnings = diagnostics.len();
    if strict && warnings > 0 {
        tracing::error!(
            "{} has {warnings} warning{} and --strict is set",
            shown(input),
            plural(warnings)
        );
        return None;
    }
    Some(stack)
}

/// The files as one name for messages: `a.yaml` or `a.yaml + b.yaml`.
fn shown(input: &ComposeFiles) -> String {
    let names: Vec<String> = input.files.iter().map(|f| f.display().to_string()).collect();
    names.join(" + ")
}

fn report_invalid(files: &str, diagnostics: &[Diagnostic]) {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    tracing::error!("{files} is invalid ({errors} error{})", plural(errors));
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// On a terminal, each with the line it points at and a caret (coloured unless NO_COLOR);
/// piped, the plain `file:line:col: message` lines the golden files hold, which tools
/// (editors' problem matchers, grep) read one per line.
fn print_diagnostics(diagnostics: &[Diagnostic]) {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        for diagnostic in diagnostics {
            eprintln!("{diagnostic}");
        }
        return;
    }
    let colour = std::env::var_os("NO_COLOR").is_none();
    let mut sources: std::collections::HashMap<std::path::PathBuf, Option<String>> = Default::default();
    for diagnostic in diagnostics {
        let source = diagnostic.location.as_ref().and_then(|loc| {
            sources
                .entry(loc.file.clone())
                .or_insert_with(|| std::fs::read_to_string(&loc.file).ok())
                .as_deref()
        });
        eprintln!("{}", diagnostic.render_with_source(source, colour));
    }
}
