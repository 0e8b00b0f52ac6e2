//! The project's `.env` (or the `--env-file`s), read for `${VAR}` interpolation, with
//! Compose's rules: `.env` in the project folder (the first compose file's folder) unless
//! `--env-file` is given; several `--env-file`s, later wins; a missing `--env-file` is an
//! error, a missing `.env` is not; the process environment wins over every file.
//!
//! The lines are parsed by `dotenvy` (quotes, `export`, comments, `${VAR}` inside values),
//! the parser Rust projects already use for the format.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::source::read_text_file;

/// What the env files gave, and which were read (for messages and `up --watch`).
#[derive(Debug, Default)]
pub struct DotEnv {
    pub vars: HashMap<String, String>,
    /// Files read, absolute, in order.
    pub read: Vec<PathBuf>,
    /// The default `.env` looked for (when no `--env-file` was given) and absent.
    pub missing_default: Option<PathBuf>,
}

/// One problem with an env file: the file, the line when known, the message.
#[derive(Debug)]
pub struct DotEnvProblem {
    pub file: PathBuf,
    pub line: Option<u64>,
    pub message: String,
    pub hint: Option<String>,
}

/// Reads `explicit` (`--env-file`s, relative to the current folder as Compose does) or,
/// without them, `dir/.env` if it is there.
pub fn read(explicit: Option<&[PathBuf]>, dir: &Path, problems: &mut Vec<DotEnvProblem>) -> DotEnv {
    let mut out = DotEnv::default();
    let files: Vec<PathBuf> = match explicit {
        Some(files) => files.to_vec(),
        None => {
            let default = dir.join(".env");
            if !default.exists() {
                out.missing_default = Some(default);
                return out;
            }
            vec![default]
        }
    };
    for file in files {
        let text = match read_text_file(&file) {
            Ok(text) => text,
            Err(e) => {
                let hint = match &e {
                    crate::source::ReadError::NotFound(_) => {
                        Some("check the path given to `--env-file` (relative to the current folder)".to_string())
                    }
                    other => other.hint(),
                };
                problems.push(DotEnvProblem {
                    file: file.clone(),
                    line: None,
                    message: e.to_string(),
                    hint,
                });
                continue;
            }
        };
        for item in dotenvy::from_read_iter(text.as_bytes()) {
            match item {
                Ok((k, v)) => {
                    out.vars.insert(k, v);
                }
                Err(dotenvy::Error::LineParse(line, index)) => {
                    problems.push(DotEnvProblem {
                        file: file.clone(),
                        line: line_number(&text, &line),
                        message: format!("cannot parse `{}` (at character {index})", line.trim()),
                        hint: Some("write `KEY=value`; quote values with spaces: `KEY=\"a b\"`".into()),
                    });
                    // dotenvy stops at a bad line: what follows is not read.
                    break;
                }
                Err(e) => {
                    problems.push(DotEnvProblem {
                        file: file.clone(),
                        line: None,
                        message: e.to_string(),
                        hint: None,
                    });
                    break;
                }
            }
        }
        out.read.push(file);
    }
    out
}

/// The 1-based line of `needle` in `text`, for a parse error's location.
fn line_number(text: &str, needle: &str) -> Option<u64> {
    let first = needle.lines().next()?.trim();
    text.lines().position(|l| l.trim() == first).map(|i| i as u64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_env_and_explicit_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Vec::new();
        let none = read(None, dir.path(), &mut p);
        assert!(none.vars.is_empty() && none.missing_default.is_some());
        std::fs::write(
            dir.path().join(".env"),
            "# board\nA=1\nexport B=\"two words\"\nC=${A}x\n",
        )
        .unwrap();
        let env = read(None, dir.path(), &mut p);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(env.vars["A"], "1");
        assert_eq!(env.vars["B"], "two words");
        assert_eq!(env.vars["C"], "1x");
        let other = dir.path().join("board.env");
        std::fs::write(&other, "A=2\n").unwrap();
        // --env-file replaces .env; later files win.
        let env = read(Some(std::slice::from_ref(&other)), dir.path(), &mut p);
        assert_eq!(env.vars.get("B"), None);
        assert_eq!(env.vars["A"], "2");
        let env = read(Some(&[dir.path().join(".env"), other]), dir.path(), &mut p);
        assert_eq!((env.vars["A"].as_str(), env.vars["B"].as_str()), ("2", "two words"));
    }

    #[test]
    fn bad_and_missing_files_are_reported_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.env");
        std::fs::write(&bad, "A=1\nthis is not a line\n").unwrap();
        let mut p = Vec::new();
        let env = read(Some(&[bad.clone(), dir.path().join("nope.env")]), dir.path(), &mut p);
        assert_eq!(env.vars["A"], "1");
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!((p[0].file.clone(), p[0].line), (bad, Some(2)));
        assert!(p[1].message.contains("no such file"), "{p:?}");
    }
}
