//! `profiles:` on containers, with Compose's rules: a container without profiles always
//! runs; one with profiles runs when one of them is enabled (`--profile NAME`, repeatable, or
//! `SHOAL_PROFILES=a,b` from the environment or `.env`; `*` enables every profile). A
//! container that runs may not depend on one that does not: that is an error naming both,
//! rather than a container that waits forever.

use std::collections::HashMap;

use crate::decode::{Ctx, Decoded};
use crate::diagnostic::Diagnostic;

/// The environment variable read when no `--profile` is given.
pub const PROFILES_VAR: &str = "SHOAL_PROFILES";

/// Whether a profile name is valid (Compose's `[a-zA-Z0-9][a-zA-Z0-9_.-]*`).
pub fn is_valid_profile(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The enabled profiles: the flags, else `SHOAL_PROFILES` (comma-separated).
pub fn enabled(flags: Option<&[String]>, env: &HashMap<String, String>) -> Vec<String> {
    match flags {
        Some(flags) => flags.to_vec(),
        None => env
            .get(PROFILES_VAR)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Drops the containers whose profiles are all disabled; reports a dependency of a kept
/// container on a dropped one, and a file where nothing is left.
pub fn apply(decoded: &mut Decoded, enabled: &[String], ctx: &mut Ctx) {
    let all = enabled.iter().any(|p| p == "*");
    let runs = |profiles: &[(String, crate::node::Pos)]| {
        all || profiles.is_empty() || profiles.iter().any(|(p, _)| enabled.contains(p))
    };
    let (kept, dropped): (Vec<_>, Vec<_>) = std::mem::take(&mut decoded.containers)
        .into_iter()
        .partition(|d| runs(&d.profiles));
    let had_any = !kept.is_empty() || !dropped.is_empty();
    decoded.containers = kept;
    for d in &mut decoded.containers {
        let service = d.service.clone();
        d.deps.retain(|(dep, pos, _)| {
            let Some(off) = dropped.iter().find(|x| x.service == *dep) else {
                return true;
            };
            let names: Vec<String> = off.profiles.iter().map(|(p, _)| format!("`{p}`")).collect();
            let first = off.profiles.first().map(|(p, _)| p.as_str()).unwrap_or_default();
            ctx.error(
                *pos,
                &format!("containers.{service}.depends_on"),
                format!(
                    "container `{service}` depends on `{dep}`, which is only in profile {} (not enabled)",
                    names.join(", ")
                ),
                Some(format!(
                    "enable it with `--profile {first}` (or SHOAL_PROFILES={first}), or give `{service}` the same `profiles:`"
                )),
            );
            false
        });
    }
    if had_any && decoded.containers.is_empty() {
        let mut names: Vec<&str> = dropped
            .iter()
            .flat_map(|d| d.profiles.iter().map(|(p, _)| p.as_str()))
            .collect();
        names.sort_unstable();
        names.dedup();
        ctx.diags.push(
            Diagnostic::error(
                None,
                "containers",
                format!(
                    "every container is in a profile that is not enabled (profiles: {})",
                    names.join(", ")
                ),
            )
            .with_hint(format!(
                "enable one with `--profile NAME` or SHOAL_PROFILES, e.g. `--profile {}`",
                names.first().copied().unwrap_or("NAME")
            )),
        );
    }
}
