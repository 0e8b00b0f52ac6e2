//! `${VAR}` interpolation, as in Docker Compose, so that files people already write work.
//!
//! Supported: `$VAR`, `${VAR}`, `${VAR:-default}` (default when unset or empty),
//! `${VAR-default}` (default when unset), `${VAR:?message}` / `${VAR?message}` (error when
//! unset/empty or unset), `$$` for a literal `$`. Defaults may themselves contain `${...}`.
//! Applied to string VALUES only (never keys), before decoding, so `replicas: ${N:-2}` works.

use std::collections::HashMap;

use super::node::{Node, Pos, Value};

/// Result of interpolating one string.
#[derive(Debug, Default, PartialEq)]
pub struct Interpolated {
    pub text: String,
    /// Variables that were unset and had no default (replaced by an empty string, as Compose
    /// does; reported as warnings).
    pub unset: Vec<String>,
}

/// A string that cannot be interpolated: an unterminated `${`, a bad variable name, or a
/// `${VAR:?message}` whose variable is unset. The text is the whole message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InterpolationError(pub String);

/// Interpolates one string.
pub fn interpolate(input: &str, env: &HashMap<String, String>) -> Result<Interpolated, InterpolationError> {
    let mut out = Interpolated::default();
    out.text = expand(input, env, &mut out.unset).map_err(InterpolationError)?;
    Ok(out)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn expand(input: &str, env: &HashMap<String, String>, unset: &mut Vec<String>) -> Result<String, String> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                // Find the matching `}` (defaults may nest `${...}`).
                let start = i + 2;
                let mut depth = 1;
                let mut j = start;
                while j < chars.len() {
                    match chars[j] {
                        '{' if j > 0 && chars[j - 1] == '$' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                if j >= chars.len() {
                    let rest: String = chars[i..].iter().collect();
                    return Err(format!("unterminated variable reference `{rest}`: missing `}}`"));
                }
                let body: String = chars[start..j].iter().collect();
                out.push_str(&expand_braced(&body, env, unset)?);
                i = j + 1;
            }
            Some(&n) if is_name_start(n) => {
                let mut j = i + 1;
                while j < chars.len() && is_name_char(chars[j]) {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                out.push_str(&lookup(&name, env, unset));
                i = j;
            }
            _ => {
                // A lone `$` (e.g. `cost: 5$`) is kept as written, as Compose does.
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

fn lookup(name: &str, env: &HashMap<String, String>, unset: &mut Vec<String>) -> String {
    match env.get(name) {
        Some(v) => v.clone(),
        None => {
            if !unset.iter().any(|u| u == name) {
                unset.push(name.to_owned());
            }
            String::new()
        }
    }
}

fn expand_braced(body: &str, env: &HashMap<String, String>, unset: &mut Vec<String>) -> Result<String, String> {
    let name_end = body.find(|c: char| !is_name_char(c)).unwrap_or(body.len());
    let name = &body[..name_end];
    if name.is_empty() || !name.starts_with(is_name_start) {
        return Err(format!(
            "invalid variable reference `${{{body}}}`: expected a variable name"
        ));
    }
    let rest = &body[name_end..];
    let value = env.get(name);
    let (op, arg) = if let Some(a) = rest.strip_prefix(":-") {
        (":-", a)
    } else if let Some(a) = rest.strip_prefix(":?") {
        (":?", a)
    } else if let Some(a) = rest.strip_prefix('-') {
        ("-", a)
    } else if let Some(a) = rest.strip_prefix('?') {
        ("?", a)
    } else if rest.is_empty() {
        ("", "")
    } else {
        return Err(format!(
            "invalid variable reference `${{{body}}}`: expected `}}`, `:-`, `-`, `:?` or `?` after `{name}`"
        ));
    };
    match op {
        "" => Ok(lookup(name, env, unset)),
        ":-" => match value {
            Some(v) if !v.is_empty() => Ok(v.clone()),
            _ => expand(arg, env, unset),
        },
        "-" => match value {
            Some(v) => Ok(v.clone()),
            None => expand(arg, env, unset),
        },
        _ => {
            let missing = match value {
                None => true,
                Some(v) => op == ":?" && v.is_empty(),
            };
            match value {
                Some(v) if !missing => Ok(v.clone()),
                _ => {
                    let msg = expand(arg, env, unset)?;
                    let how = if op == ":?" { "unset or empty" } else { "unset" };
                    if msg.is_empty() {
                        Err(format!("required variable `{name}` is {how}"))
                    } else {
                        Err(format!("required variable `{name}` is {how}: {msg}"))
                    }
                }
            }
        }
    }
}

/// A problem met while interpolating the tree.
#[derive(Debug, PartialEq)]
pub enum TreeProblem {
    Error { pos: Pos, key: String, message: String },
    Unset { pos: Pos, key: String, name: String },
}

/// Interpolates every string value in the tree in place (keys are left as written).
pub fn interpolate_tree(node: &mut Node, env: &HashMap<String, String>, problems: &mut Vec<TreeProblem>) {
    walk(node, env, problems, "");
}

/// `key` is the dotted path of `node`, for diagnostics.
fn walk(node: &mut Node, env: &HashMap<String, String>, problems: &mut Vec<TreeProblem>, key: &str) {
    match &mut node.value {
        Value::Str(s) => {
            if !s.contains('$') {
                return;
            }
            match interpolate(s, env) {
                Ok(done) => {
                    for name in done.unset {
                        problems.push(TreeProblem::Unset {
                            pos: node.pos,
                            key: key.to_string(),
                            name,
                        });
                    }
                    *s = done.text;
                }
                Err(InterpolationError(message)) => problems.push(TreeProblem::Error {
                    pos: node.pos,
                    key: key.to_string(),
                    message,
                }),
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, env, problems, &format!("{key}[{i}]"));
            }
        }
        Value::Map(entries) => {
            for (k, v) in entries {
                let path = if key.is_empty() {
                    k.name.clone()
                } else {
                    format!("{key}.{}", k.name)
                };
                walk(v, env, problems, &path);
            }
        }
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HashMap<String, String> {
        [("A", "alpha"), ("EMPTY", ""), ("N", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ok(s: &str) -> String {
        interpolate(s, &env()).unwrap().text
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(ok("x-${A}-y"), "x-alpha-y");
        assert_eq!(ok("$A/b"), "alpha/b");
        assert_eq!(ok("no vars"), "no vars");
    }

    #[test]
    fn defaults() {
        assert_eq!(ok("${MISSING:-d}"), "d");
        assert_eq!(ok("${EMPTY:-d}"), "d");
        assert_eq!(ok("${EMPTY-d}"), "");
        assert_eq!(ok("${MISSING-d}"), "d");
        assert_eq!(ok("${A:-d}"), "alpha");
        assert_eq!(ok("${MISSING:-${A}}"), "alpha");
        assert_eq!(ok("${MISSING:-}"), "");
    }

    #[test]
    fn escape() {
        assert_eq!(ok("$${A}"), "${A}");
        assert_eq!(ok("$$"), "$");
        assert_eq!(ok("5$"), "5$");
    }

    #[test]
    fn unset_is_empty_and_reported() {
        let r = interpolate("a${NOPE}b$NOPE", &env()).unwrap();
        assert_eq!(r.text, "ab");
        assert_eq!(r.unset, vec!["NOPE".to_string()]);
    }

    #[test]
    fn unterminated_is_an_error() {
        let e = interpolate("x ${A", &env()).unwrap_err();
        assert!(e.0.contains("unterminated"), "{e}");
    }

    #[test]
    fn required() {
        assert!(interpolate("${NOPE:?set it}", &env()).unwrap_err().0.contains("set it"));
        assert!(interpolate("${EMPTY:?}", &env()).is_err());
        assert_eq!(ok("${EMPTY?}"), "");
    }

    #[test]
    fn bad_name() {
        assert!(interpolate("${1A}", &env()).is_err());
        assert!(interpolate("${A B}", &env()).is_err());
    }

    #[test]
    fn tree_values_not_keys() {
        let (mut n, _) = crate::node::parse("${A}: ${A}\nn: ${N}\n").unwrap();
        let mut p = Vec::new();
        interpolate_tree(&mut n, &env(), &mut p);
        assert!(p.is_empty());
        let Value::Map(m) = &n.value else { panic!() };
        assert_eq!(m[0].0.name, "${A}");
        assert_eq!(m[0].1.value, Value::Str("alpha".into()));
        assert_eq!(m[1].1.value, Value::Str("3".into()));
    }
}
