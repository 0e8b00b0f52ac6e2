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
