//! A generic YAML tree where every node and every key knows its line and column.
//!
//! serde stops at the first error, but users want every problem in one run; so the file is
//! first read into this loosely typed tree (only YAML syntax errors stop here), and the
//! decoder walks it by hand, collecting diagnostics.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// 1-based line and column of a node in the source, and which of the merged compose files
/// it was read from (an index into the load's file list; 0 is the first `-f` file), so a
/// diagnostic about a key from an override file names that file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
    pub file: u16,
}

/// A value with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

/// A mapping key (always a string after [`parse`]; other keys are reported there).
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub pos: Pos,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

impl Value {
    /// What kind of YAML value this is, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// Scalar as text (numbers and booleans as written in YAML), for fields like `args`
    /// where `--port: 8080` should just work.
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Str(s) => Some(s.clone()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }
}

/// The raw serde form: keys may be any node; [`parse`] checks they are strings.
enum RawNode {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawNode>>),
    Map(Vec<(Spanned<RawNode>, Spanned<RawNode>)>),
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawNode;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawNode, D::Error> {
        RawNode::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawNode, E> {
        Ok(RawNode::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawNode, E> {
        Ok(RawNode::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawNode, E> {
        // Larger than i64: keep it as a float so range checks still report it as too large.
        Ok(i64::try_from(v).map_or(RawNode::Float(v as f64), RawNode::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawNode, E> {
        Ok(RawNode::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawNode, E> {
        Ok(RawNode::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<RawNode, E> {
        Ok(RawNode::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<RawNode>>()? {
            items.push(item);
        }
        Ok(RawNode::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Spanned<RawNode>>()? {
            let v = map.next_value::<Spanned<RawNode>>()?;
            entries.push((k, v));
        }
        Ok(RawNode::Map(entries))
    }
}

/// A problem found while reading the tree: 1-based position (if known) and message.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseProblem {
    pub pos: Option<Pos>,
    pub message: String,
}

fn pos_of<T>(s: &Spanned<T>) -> Pos {
    Pos {
        line: s.referenced.line(),
        column: s.referenced.column(),
        file: 0,
    }
}

/// Options that make YAML mean what a compose-file author expects: YAML 1.2 booleans, so
/// `restart: no` is the string `no` and not `false`.
///
/// Nesting is capped at [`MAX_DEPTH`] (the parser's default is 64): deserializing recurses
/// per level, and found by fuzzing, 65 levels overflow a 2 MiB thread stack in a debug
/// build. A compose file needs fewer than ten.
///
/// The node budget is sized for real stacks ([`MAX_NODES`]) rather than left at the
/// parser's 250,000. Duplicate keys are passed through to [`convert`], which reports each
/// with both places (the parser's own message names neither and leaks its option name).
fn options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    o.strict_booleans = true;
    o.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.max_nodes = MAX_NODES;
    o.budget = Some(budget);
    o
}

/// Deepest nesting of mappings and lists accepted in a compose file.
pub const MAX_DEPTH: usize = 24;

/// Most YAML nodes (keys, values, list items) in a compose file: a few thousand containers
/// of twenty settings each. More is a mistake or an attack, and parsing it would take the
/// memory of a small board.
pub const MAX_NODES: usize = 100_000;

/// The parser's limit messages ("budget breached: Nodes { nodes: 100001 }") in words.
fn budget_message(text: &str) -> Option<String> {
    let breach = text.split("budget breached: ").nth(1)?;
    let kind = breach.split([' ', '{', '(']).next().unwrap_or("");
    Some(match kind {
        "Depth" => format!(
            "the file nests mappings and lists deeper than {MAX_DEPTH} levels; a compose file needs fewer than ten"
        ),
        "Nodes" => format!(
            "the file is too large: more than {MAX_NODES} YAML nodes (keys, values and list items); a compose file holds at most a few thousand containers, so split the stack into several projects"
        ),
        "Aliases" | "Anchors" => format!(
            "the file uses too many YAML {} to be a compose file; write the values out or use fewer of them",
            kind.to_lowercase()
        ),
        _ => "the file is too large or too repetitive to be a compose file (it passed one of the parser's size limits); split the stack into several projects".to_owned(),
    })
}

/// Parses `text` into a spanned tree. A syntax error is returned alone (nothing after it can
/// be trusted); non-string keys are reported as problems while the rest of the tree is kept.
pub fn parse(text: &str) -> Result<(Node, Vec<ParseProblem>), ParseProblem> {
    if text.trim().is_empty()
        || text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Ok((
            Node {
                pos: Pos {
                    line: 1,
                    column: 1,
                    file: 0,
                },
                value: Value::Null,
            },
            Vec::new(),
        ));
    }
    let raw: Spanned<RawNode> = serde_saphyr::from_str_with_options(text, options()).map_err(|e| {
        let pos = e.location().map(|l| Pos {
            line: l.line(),
            column: l.column(),
            file: 0,
        });
        let text = e.to_string();
        let message = if text.contains("recursion limit exceeded") {
            format!(
                "the file nests mappings and lists deeper than {MAX_DEPTH} levels; a compose file needs fewer than ten"
            )
        } else {
            budget_message(&text).unwrap_or_else(|| first_line(&text))
        };
        ParseProblem {
            pos: pos.filter(|p| p.line > 0),
            message,
        }
    })?;
    let mut problems = Vec::new();
    let node = convert(raw, &mut problems);
    Ok((node, problems))
}

/// The parser's message without its rendered source snippet (we print our own location).
fn first_line(msg: &str) -> String {
    let line = msg
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid YAML")
        .trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    // The parser repeats the position in its text; we already print it in front.
    let line = match line.strip_prefix("line ") {
        Some(rest) => match rest.split_once(": ") {
            Some((pos, msg)) if pos.contains(" column ") => msg,
            _ => line,
        },
        None => line,
    };
    format!("invalid YAML: {line}")
}

/// Marks every node and key of a tree as read from file `index` of the load's file list.
pub fn set_file(node: &mut Node, index: u16) {
    node.pos.file = index;
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|i| set_file(i, index)),
        Value::Map(entries) => {
            for (k, v) in entries {
                k.pos.file = index;
                set_file(v, index);
            }
        }
        _ => {}
    }
}

fn convert(raw: Spanned<RawNode>, problems: &mut Vec<ParseProblem>) -> Node {
    let pos = pos_of(&raw);
    let value = match raw.value {
        RawNode::Null => Value::Null,
        RawNode::Bool(b) => Value::Bool(b),
        RawNode::Int(i) => Value::Int(i),
        RawNode::Float(f) => Value::Float(f),
        RawNode::Str(s) => Value::Str(s),
        RawNode::Seq(items) => Value::Seq(items.into_iter().map(|i| convert(i, problems)).collect()),
        RawNode::Map(entries) => {
            let mut out: Vec<(Key, Node)> = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let kpos = pos_of(&k);
                let name = match k.value {
                    RawNode::Str(s) => s,
                    other => {
                        let what = match other {
                            RawNode::Null => "null",
                            RawNode::Bool(_) => "a boolean",
                            RawNode::Int(_) => "an integer",
                            RawNode::Float(_) => "a number",
                            RawNode::Seq(_) => "a list",
                            RawNode::Map(_) => "a mapping",
                            RawNode::Str(_) => "a string",
                        };
                        problems.push(ParseProblem {
                            pos: Some(kpos),
                            message: format!("mapping keys must be strings, found {what}; quote the key"),
                        });
                        continue;
                    }
                };
                if let Some((first, _)) = out.iter().find(|(key, _)| key.name == name) {
                    problems.push(ParseProblem {
                        pos: Some(kpos),
                        message: format!(
                            "duplicate key `{name}` (first at line {}, column {}); keep one of them",
                            first.pos.line, first.pos.column
                        ),
                    });
                    continue;
                }
                out.push((Key { pos: kpos, name }, convert(v, problems)));
            }
            Value::Map(out)
        }
    };
    Node { pos, value }
}

/// The file's bytes as text, or where the first byte that is not UTF-8 sits (1-based line
/// and column, columns counted in characters as the parser counts them).
pub fn utf8(bytes: Vec<u8>) -> Result<String, ParseProblem> {
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        // Valid up to here by the error's own account.
        let before = std::str::from_utf8(good).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ParseProblem {
            pos: Some(Pos {
                line: line as u64,
                column: column as u64,
                file: 0,
            }),
            message: format!(
                "the file is not UTF-8 text (byte 0x{:02x}); save it as UTF-8",
                e.as_bytes()[good.len()]
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_duplicates_are_told_in_words() {
        let (_, problems) = parse("a: 1\nb:\n  c: 2\n  c: 3\na: 4\n").expect("parses");
        let messages: Vec<_> = problems
            .iter()
            .map(|p| (p.pos.map(|p| (p.line, p.column)), p.message.as_str()))
            .collect();
        assert_eq!(
            messages,
            [
                (
                    Some((4, 3)),
                    "duplicate key `c` (first at line 3, column 3); keep one of them"
                ),
                (
                    Some((5, 1)),
                    "duplicate key `a` (first at line 1, column 1); keep one of them"
                ),
            ]
        );
        let mut big = String::from("containers:\n");
        for i in 0..MAX_NODES / 2 {
            big.push_str(&format!("  c{i}: x\n"));
        }
        let error = parse(&big).expect_err("too large");
        assert!(
            error
                .message
                .starts_with("the file is too large: more than 100000 YAML nodes"),
            "{}",
            error.message
        );
        assert!(!error.message.contains("budget"), "{}", error.message);
    }

    #[test]
    fn bytes_that_are_not_utf8_get_a_place() {
        let problem = utf8(b"a: 1\nbb: \xc3\xa9\xff\n".to_vec()).expect_err("not utf-8");
        assert_eq!(
            problem.pos,
            Some(Pos {
                line: 2,
                column: 6,
                file: 0
            })
        );
        assert_eq!(
            problem.message,
            "the file is not UTF-8 text (byte 0xff); save it as UTF-8"
        );
        assert_eq!(utf8(b"ok".to_vec()).expect("utf-8"), "ok");
    }

    #[test]
    fn spans_are_one_based() {
        let (n, p) = parse("a:\n  b: 1\n  c: [x, y]\n").unwrap();
        assert!(p.is_empty());
        let Value::Map(m) = &n.value else { panic!() };
        assert_eq!(m[0].0.name, "a");
        assert_eq!(
            m[0].0.pos,
            Pos {
                line: 1,
                column: 1,
                file: 0
            }
        );
        let Value::Map(inner) = &m[0].1.value else { panic!() };
        assert_eq!(
            inner[1].0.pos,
            Pos {
                line: 3,
                column: 3,
                file: 0
            }
        );
        assert_eq!(inner[1].1.pos.line, 3);
    }

    #[test]
    fn yaml12_booleans() {
        let (n, _) = parse("a: no\nb: true\n").unwrap();
        let Value::Map(m) = &n.value else { panic!() };
        assert_eq!(m[0].1.value, Value::Str("no".into()));
        assert_eq!(m[1].1.value, Value::Bool(true));
    }

    #[test]
    fn syntax_error_has_location() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.pos.is_some(), "{e:?}");
        assert!(e.message.starts_with("invalid YAML"), "{e:?}");
    }

    #[test]
    fn non_string_keys_are_reported() {
        let (_, p) = parse("1: a\nb: c\n").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(
            p[0].pos,
            Some(Pos {
                line: 1,
                column: 1,
                file: 0
            })
        );
    }

    #[test]
    fn empty_document_is_null() {
        let (n, _) = parse("# nothing\n").unwrap();
        assert_eq!(n.value, Value::Null);
    }

    #[test]
    fn duplicate_keys_are_an_error() {
        let (_, problems) = parse("a: 1\na: 2\n").expect("the rest of the tree is kept");
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    /// Found by the fuzzer: nesting past the parser's default depth overflowed a 2 MiB
    /// stack in a debug build. Deep files are now a clear error, on a small stack too.
    #[test]
    fn deep_nesting_is_a_clear_error_even_on_a_small_stack() {
        let handle = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(|| {
                for depth in [MAX_DEPTH + 1, 65, 10_000] {
                    let text = format!("a: {}{}", "[".repeat(depth), "]".repeat(depth));
                    let e = parse(&text).unwrap_err();
                    assert!(e.message.contains("deeper than 24 levels"), "{depth}: {e:?}");
                }
                let ok = format!("a: {}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
                assert!(parse(&ok).is_ok());
            })
            .unwrap();
        handle.join().unwrap();
    }
}
