//! Which file a running project runs: two files never silently share one project name
//! (issue 16 fault 5). `up -d -f FILE` names the file it means; the stack refuses another.

use std::path::{Path, PathBuf};

use crate::spec::Stack;

/// The path with symlinks resolved, or as it is when it cannot be (it was removed).
pub fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `up -d` named a file other than the one the running project was started from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "error: project `{project}` is running from {running}, not from {given}\n  hint: `shoal down -p {project}` stops it first; to run both, give this file another project name (`-p NAME`, or `name:` in the file)\n"
)]
pub struct OtherFile {
    pub project: String,
    pub running: String,
    pub given: String,
}

/// `up -d -f FILE` on `stack`: it must be the file the stack runs. Applying another file
/// under the same name would silently swap one project for another (two folders both
/// called `app`); the refusal names both files and the ways out. No files (an older
/// client): whatever it runs.
pub fn same_files(stack: &Stack, files: &[PathBuf]) -> Result<(), OtherFile> {
    let running: Vec<PathBuf> = if stack.compose.files.is_empty() {
        vec![canonical(&stack.file)]
    } else {
        stack.compose.files.iter().map(|f| canonical(f)).collect()
    };
    let given: Vec<PathBuf> = files.iter().map(|f| canonical(f)).collect();
    if given.is_empty() || given == running {
        return Ok(());
    }
    let list = |files: &[PathBuf]| {
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(" + ")
    };
    Err(OtherFile {
        project: stack.name.to_string(),
        running: list(&running),
        given: list(&given),
    })
}
