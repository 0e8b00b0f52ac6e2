//! The compose file as the command line meets it: which file a command means, and loading
//! it with its diagnostics printed. Every command that reads a compose file goes through
//! [`compose_path`], so the lookup and its hints are written once.

use std::path::{Path, PathBuf};

use crate::check;
use crate::images::ImageStore;
use crate::runtime::RuntimeConfig;
use crate::spec::{self, Diagnostic, Stack};

/// Why no compose file was found.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ComposeFileError {
    /// `-f DIR` (or a folder as the positional argument) without a compose file in it.
    #[error("no shoal.yaml or compose.yaml in {}", .0.display())]
    NotInFolder(PathBuf),
    /// Nothing given and none in the current folder.
    #[error("no shoal.yaml or compose.yaml in {}\n  hint: pass one with `-f FILE`", .0.display())]
    NotHere(PathBuf),
    /// The current folder cannot be read (removed under our feet, no permission).
    #[error(transparent)]
    CurrentDir(#[from] std::io::Error),
}

/// Find the compose file: `-f` or a positional path (a file as given, a folder searched
/// with [`spec::find_compose_file`]), or shoal.yaml/compose.yaml in the current folder.
/// A given file is not checked here: reading it reports a missing one with its own hint.
pub(crate) fn compose_path(explicit: Option<&Path>) -> Result<PathBuf, ComposeFileError> {
    match explicit {
        Some(path) if path.is_dir() => {
            spec::find_compose_file(path).ok_or_else(|| ComposeFileError::NotInFolder(path.to_path_buf()))
        }
        Some(path) => Ok(path.to_path_buf()),
        None => {
            let here = std::env::current_dir()?;
            spec::find_compose_file(&here).ok_or(ComposeFileError::NotHere(here))
        }
    }
}

/// Parse and validate, then check the images' imports against the grants and the topic
/// wiring; print diagnostics to stderr. `None` when the stack must not run.
/// `runtime` is the engine settings precompiled images are loaded with, as `up` would.
pub(crate) fn load_stack(images: &ImageStore, runtime: &RuntimeConfig, path: &Path, strict: bool) -> Option<Stack> {
    let (stack, diagnostics) = match check::load_checked(path, images, &check::Engines::from_config(runtime)) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            print_diagnostics(&diagnostics);
            report_invalid(path, &diagnostics);
            return None;
        }
    };
    print_diagnostics(&diagnostics);
    let warnings = diagnostics.len();
    if strict && warnings > 0 {
        eprintln!(
            "error: {} has {warnings} warning{} and --strict is set",
            path.display(),
            plural(warnings)
        );
        return None;
    }
    Some(stack)
}

fn report_invalid(path: &Path, diagnostics: &[Diagnostic]) {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    eprintln!(
        "error: {} is invalid ({errors} error{})",
        path.display(),
        plural(errors)
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_file_is_taken_as_is() {
        let file = Path::new("/no/such/place/stack.yaml");
        assert_eq!(compose_path(Some(file)).unwrap(), file);
    }

    #[test]
    fn a_folder_is_searched() {
        let dir = tempfile::tempdir().unwrap();
        let error = compose_path(Some(dir.path())).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("no shoal.yaml or compose.yaml in {}", dir.path().display())
        );
        std::fs::write(dir.path().join("compose.yaml"), "").unwrap();
        assert_eq!(compose_path(Some(dir.path())).unwrap(), dir.path().join("compose.yaml"));
    }
}
