//! The rule every golden-file update switch follows (`SHOAL_UPDATE_GOLDEN`,
//! `SHOAL_UPDATE_SCHEMA`), for this crate's tests and the binary crate's image-check
//! goldens alike. It is a real public item (hidden from the docs) because a `#[cfg(test)]`
//! item of one crate is invisible to another crate's tests, and the rule must be one.
//!
//! - unset: compare, and a missing golden file is a failure, never "nothing expected";
//! - `=1`: rewrite, then fail with the number of files rewritten ([`updated`]), so a run
//!   that rewrote never passes (rerun without the switch to check);
//! - `=1` with `CI` set: fail before writing anything (CI checks, it never rewrites);
//! - any other value: fail, naming the switch, rather than silently comparing.

/// Whether `switch` asks to rewrite the golden files; panics (the test fails) for any
/// value but unset or `1`, and for `1` under CI.
pub fn update_requested(switch: &str) -> bool {
    match std::env::var(switch) {
        Err(std::env::VarError::NotPresent) => false,
        Ok(v) if v == "1" => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{switch}=1 under CI: golden files are checked in CI, never rewritten; unset {switch}"
            );
            true
        }
        Ok(v) => panic!("{switch}={v:?}: set it to 1 to rewrite the golden files, or unset it"),
        Err(e) => panic!("{switch}: {e}; set it to 1 or unset it"),
    }
}

/// Ends an update run: it always fails, so rewriting can never pass as a check.
pub fn updated(switch: &str, rewritten: usize, of: usize) -> ! {
    panic!("{switch}=1: updated {rewritten} of {of} files; rerun without the switch to check them")
}

/// One golden test's pass over its files, by the rule above: [`Run::text`] or
/// [`Run::derived`] for each file, then [`Run::finish`].
pub struct Run {
    switch: &'static str,
    update: bool,
    files: usize,
    rewritten: usize,
    failures: Vec<String>,
}

impl Run {
    /// A run under `switch` ([`update_requested`] reads it).
    pub fn new(switch: &'static str) -> Run {
        Run {
            switch,
            update: update_requested(switch),
            files: 0,
            rewritten: 0,
            failures: Vec::new(),
        }
    }

    /// A golden text file: compared with `got`, or rewritten when the switch asks.
    pub fn text(&mut self, expected: &std::path::Path, got: &str) {
        self.files += 1;
        match compare(expected, got, self.update) {
            Ok(rewrote) => self.rewritten += usize::from(rewrote),
            Err(failure) => self.failures.push(failure),
        }
    }

    /// A file that must hold `want` (made from another one, as a `.wasm` from its `.wat`):
    /// rewritten when the switch asks, otherwise `stale` says what is wrong.
    pub fn derived(&mut self, path: &std::path::Path, want: &[u8], stale: impl FnOnce() -> String) {
        self.files += 1;
        if std::fs::read(path).ok().as_deref() == Some(want) {
            return;
        }
        if !self.update {
            self.failures.push(stale());
        } else if let Err(e) = std::fs::write(path, want) {
            self.failures
                .push(format!("--- {}: cannot write it: {e}", path.display()));
        } else {
            self.rewritten += 1;
        }
    }

    /// Ends the run: an update run fails with how many files it rewrote ([`updated`]); a
    /// check run fails when any differs, `what` first (it says how to regenerate them).
    pub fn finish(self, what: &str) {
        if self.update {
            updated(self.switch, self.rewritten, self.files);
        }
        assert!(self.failures.is_empty(), "{what}:\n{}", self.failures.join("\n"));
    }
}

/// One golden file: with `update`, rewrite `expected` when it is not `got` (`Ok(true)`:
/// rewritten); otherwise compare, and `Err` is the failure to report (the file and both
/// texts, or why it could not be read: a missing golden file is a failure, never "nothing
/// expected").
fn compare(expected: &std::path::Path, got: &str, update: bool) -> Result<bool, String> {
    let want = std::fs::read_to_string(expected);
    if update {
        if want.as_deref().ok() == Some(got) {
            return Ok(false);
        }
        std::fs::write(expected, got).map_err(|e| format!("--- {}: cannot write it: {e}", expected.display()))?;
        return Ok(true);
    }
    match want {
        Err(e) => Err(format!(
            "--- {}: {e}: every case needs its golden file (an empty one for no diagnostics)",
            expected.display()
        )),
        Ok(want) if want != got => Err(format!("--- {}\n{want}\n--- got:\n{got}", expected.display())),
        Ok(_) => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_fails_on_a_missing_or_different_file_and_update_rewrites_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("case.stderr");
        let missing = compare(&file, "text\n", false).unwrap_err();
        assert!(missing.contains("every case needs its golden file"), "{missing}");
        assert_eq!(compare(&file, "text\n", true), Ok(true));
        assert_eq!(compare(&file, "text\n", true), Ok(false));
        assert_eq!(compare(&file, "text\n", false), Ok(false));
        let differs = compare(&file, "other\n", false).unwrap_err();
        assert!(differs.contains("text\n\n--- got:\nother\n"), "{differs}");
    }
}
