//! `cpus:`: the cores a container is pinned to. Only the syntax and the range Linux can
//! name are checked here; whether the cores exist is a question about the machine, asked
//! at `up` (the spec crate knows nothing of the machine it is read on).
//!
//! Docker Compose's `cpus: 1.5` is a CPU quota; shoal's quota is `limits.cpu`, so a
//! fraction here is refused with that hint rather than read as a core number.

use std::collections::BTreeSet;

use schemars::JsonSchema;

use super::Ctx;
use crate::model::CoreSet;
use crate::node::{Node, Value};

/// Decode `cpus:` at `kp`; errors are reported on `ctx` and give `None`.
pub(crate) fn decode_cpus(v: &Node, kp: &str, ctx: &mut Ctx) -> Option<CoreSet> {
    let mut cores = BTreeSet::new();
    let parsed = match &v.value {
        Value::Int(i) => core_number(*i).map(|c| {
            cores.insert(c);
        }),
        Value::Str(s) => parse_cpu_list(s).map(|set| cores = set),
        Value::Float(f) => {
            ctx.error(
                v.pos,
                kp,
                format!("`cpus` names the cores to pin the container to, found the fraction `{f}`"),
                Some(format!(
                    "for a share of a core write `limits: {{cpu: {f}}}`; to pin, write core numbers such as `cpus: [0, 1]`"
                )),
            );
            return None;
        }
        Value::Seq(items) => {
            let mut result = Ok(());
            for item in items {
                match &item.value {
                    Value::Int(i) => match core_number(*i) {
                        Ok(c) => {
                            cores.insert(c);
                        }
                        Err(e) => {
                            ctx.error(item.pos, kp, e, None);
                            result = Err(String::new());
                        }
                    },
                    other => {
                        ctx.error(
                            item.pos,
                            kp,
                            format!("`cpus` lists core numbers, found {}", other.kind()),
                            Some("write `cpus: [0, 2]`".into()),
                        );
                        result = Err(String::new());
                    }
                }
            }
            result
        }
        other => Err(format!(
            "`cpus` must be core numbers (`[0, 2]`) or a cpu list (`\"0-1\"`), found {}",
            other.kind()
        )),
    };
    match parsed {
        Err(e) if e.is_empty() => None,
        Err(e) => {
            ctx.error(v.pos, kp, e, Some("write `cpus: [0, 2]` or `cpus: \"0-1\"`".into()));
            None
        }
        Ok(()) if cores.is_empty() => {
            ctx.error(
                v.pos,
                kp,
                "`cpus` is empty: a container needs at least one core",
                Some("remove `cpus` to run on any core".into()),
            );
            None
        }
        Ok(()) => Some(CoreSet(cores)),
    }
}

fn core_number(i: i64) -> Result<u16, String> {
    u16::try_from(i)
        .ok()
        .filter(|c| *c <= CoreSet::MAX_CORE)
        .ok_or_else(|| format!("core numbers go from 0 to {}, found {i}", CoreSet::MAX_CORE))
}

/// A Linux cpu list: `2`, `0-3`, `0-1,4,6-7` (spaces allowed around the parts).
pub fn parse_cpu_list(text: &str) -> Result<BTreeSet<u16>, String> {
    let mut cores = BTreeSet::new();
    for part in text.split(',') {
        let part = part.trim();
        let bad = || format!("invalid cpu list `{text}`: `{part}` is not a core number or a range such as `0-3`");
        let number = |s: &str| -> Result<u16, String> {
            let n: i64 = s.trim().parse().map_err(|_| bad())?;
            core_number(n)
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (number(a)?, number(b)?);
                if a > b {
                    return Err(format!("invalid cpu list `{text}`: the range `{part}` goes backwards"));
                }
                cores.extend(a..=b);
            }
            None => {
                cores.insert(number(part)?);
            }
        }
    }
    Ok(cores)
}

// The file format of this key, as the JSON schema describes it (see `schema.rs`).

/// `cpus:`: one core, a list of cores, or a Linux cpu list.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum CpusFile {
    /// One core number (0 to 1023).
    Core(u16),
    /// Core numbers.
    Cores(Vec<u16>),
    /// A Linux cpu list such as `0-1,3`.
    List(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_like_linux_writes_them() {
        let set = |v: &[u16]| v.iter().copied().collect::<BTreeSet<_>>();
        assert_eq!(parse_cpu_list("2"), Ok(set(&[2])));
        assert_eq!(parse_cpu_list("0-3"), Ok(set(&[0, 1, 2, 3])));
        assert_eq!(parse_cpu_list(" 0-1, 4 ,6-7"), Ok(set(&[0, 1, 4, 6, 7])));
        assert!(parse_cpu_list("3-1").unwrap_err().contains("backwards"));
        assert!(parse_cpu_list("a").unwrap_err().contains("`a`"));
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("0,,1").is_err());
        assert!(parse_cpu_list("1024").unwrap_err().contains("0 to 1023"));
        assert!(parse_cpu_list("-1").is_err());
    }

    #[test]
    fn core_sets_print_as_cpu_lists() {
        let set = CoreSet([0, 1, 2, 4, 6, 7].into_iter().collect());
        assert_eq!(set.to_string(), "0-2,4,6-7");
        assert_eq!(CoreSet([3].into_iter().collect()).to_string(), "3");
    }
}
