//! The codebase's shape, kept: no source file over 600 lines of non-test code and at most
//! two functions over 80 lines, in every crate of the workspace. Large rooms are where
//! concerns pile up; the limits are the ones the restructuring (issue 13) reached, so a
//! change that crosses them has to split something instead of growing it.

use std::path::{Path, PathBuf};

use crate::support::repo;

const MAX_FILE_LINES: usize = 600;
const MAX_FUNCTION_LINES: usize = 80;
const MAX_LONG_FUNCTIONS: usize = 2;

/// Every `.rs` file under the crates' `src/` folders, except test-only modules.
fn sources() -> Vec<PathBuf> {
    let mut roots = vec![repo().join("src")];
    if let Ok(crates) = std::fs::read_dir(repo().join("crates")) {
        roots.extend(crates.flatten().map(|c| c.path().join("src")));
    }
    let mut files = Vec::new();
    while let Some(dir) = roots.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                roots.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && !is_test_module(&path) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn is_test_module(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    matches!(name, "tests.rs" | "testutil.rs") || name.ends_with("_tests.rs")
}

/// The lines before the file's `#[cfg(test)] mod ... {` block (rustfmt puts it last).
fn non_test_lines(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .windows(2)
        .position(|w| w[0] == "#[cfg(test)]" && w[1].contains("mod ") && w[1].ends_with('{'))
        .unwrap_or(lines.len());
    lines[..end].to_vec()
}

/// `(name, first line, length)` of every function with a body, found by rustfmt's layout:
/// a body ends at the first line that is the signature's indentation followed by `}`.
fn functions(lines: &[&str]) -> Vec<(String, usize, usize)> {
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let Some(at) = trimmed.find("fn ") else { continue };
        let before = &trimmed[..at];
        let is_signature = before
            .split_whitespace()
            .all(|w| w.starts_with("pub") || matches!(w, "const" | "async" | "unsafe" | "extern" | "\"C\""));
        if !is_signature || trimmed.ends_with(';') || trimmed.ends_with("{}") {
            continue;
        }
        let name: String = trimmed[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let indent = &line[..line.len() - trimmed.len()];
        let close = format!("{indent}}}");
        if let Some(end) = lines[i..].iter().position(|l| *l == close) {
            found.push((name, i + 1, end + 1));
        }
    }
    found
}

#[test]
fn no_file_over_600_lines_and_at_most_two_functions_over_80() {
    let files = sources();
    assert!(files.len() > 50, "found only {} source files: wrong root?", files.len());
    let mut big_files = Vec::new();
    let mut long_functions = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let lines = non_test_lines(&text);
        let shown = file.strip_prefix(repo()).unwrap_or(file).display().to_string();
        if lines.len() > MAX_FILE_LINES {
            big_files.push(format!("{shown}: {} lines", lines.len()));
        }
        for (name, line, length) in functions(&lines) {
            if length > MAX_FUNCTION_LINES {
                long_functions.push(format!("{shown}:{line}: fn {name}, {length} lines"));
            }
        }
    }
    assert!(
        big_files.is_empty(),
        "source files over {MAX_FILE_LINES} lines of non-test code (split them by concern):\n{}",
        big_files.join("\n")
    );
    assert!(
        long_functions.len() <= MAX_LONG_FUNCTIONS,
        "more than {MAX_LONG_FUNCTIONS} functions over {MAX_FUNCTION_LINES} lines (break them into named steps):\n{}",
        long_functions.join("\n")
    );
}

#[test]
fn the_function_finder_sees_bodies_and_skips_declarations() {
    let code = "fn a() {}\npub(crate) async fn b(\n    x: u8,\n) -> u8 {\n    x\n}\nimpl T {\n    fn c(&self);\n    pub fn d(&self) {\n        if true {\n        }\n    }\n}\n";
    let lines: Vec<&str> = code.lines().collect();
    let found = functions(&lines);
    assert_eq!(
        found,
        vec![("b".to_string(), 2, 5), ("d".to_string(), 9, 4)],
        "found {found:?}"
    );
    let with_tests = "fn a() {\n}\n#[cfg(test)]\nmod tests {\n    fn long() {\n    }\n}\n";
    assert_eq!(non_test_lines(with_tests).len(), 2);
}
