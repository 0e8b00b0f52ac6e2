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
        eprintln!(
            "error: {} has {warnings} warning{} and --strict is set",
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

fn report_invalid(shown: &str, diagnostics: &[Diagnostic]) {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    eprintln!("error: {shown} is invalid ({errors} error{})", plural(errors));
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn print_diagnostics(diagnostics: &[Diagnostic]) {
    for diagnostic in diagnostics {
        eprintln!("{diagnostic}");
    }
}
