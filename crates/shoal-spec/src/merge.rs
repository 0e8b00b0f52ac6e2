//! Several compose files merged in order (`-f base.yaml -f board.yaml`), with Docker
//! Compose's rules, on the spanned tree so every diagnostic still points at the file, line
//! and column a value came from (each node carries its file's index, see [`Pos`]).
//!
//! The rules (the README's "Many boards" section lists them per key):
//! - mappings merge key by key, recursively; a key only in the later file is added;
//! - scalars, and lists not named below, are replaced by the later file's (`args` too, as
//!   Compose replaces `command`);
//! - `capabilities`, `publish`, `subscribe`, `sensors`, `gpio`, `env_file` and `profiles` of a
//!   container are unions by value, first file's order first;
//! - `mounts` are keyed by their guest path: a later mount of the same target replaces the
//!   earlier one in place (Compose's rule for `volumes`);
//! - `env` and `depends_on` merge by name, whichever form (list or mapping) each file uses;
//! - an explicit null (`publish:` with no value) resets the key to its default, since the
//!   decoder reads a key with no value as "not set".
//!
//! Merging never fails: where two files disagree on a type (a mapping in one, a list in the
//! other) the later value wins and the decoder reports it at the later file's position.

use crate::node::{Key, Node, Pos, Value};

/// Container fields whose lists are unions by value.
const UNION_FIELDS: &[&str] = &[
    "capabilities",
    "publish",
    "subscribe",
    "sensors",
    "gpio",
    "env_file",
    "profiles",
];

/// Merges `over` (a later file) into `base` (everything before it).
pub fn merge(base: &mut Node, over: Node) {
    merge_at(base, over, &mut Vec::new());
}

fn merge_at(base: &mut Node, over: Node, path: &mut Vec<String>) {
    let field = container_field(path);
    match (&mut base.value, over.value) {
        (Value::Map(b), Value::Map(o)) => {
            for (k, v) in o {
                match b.iter_mut().find(|(bk, _)| bk.name == k.name) {
                    Some((_, bv)) => {
                        path.push(k.name.clone());
                        merge_at(bv, v, path);
                        path.pop();
                    }
                    None => b.push((k, v)),
                }
            }
        }
        (Value::Seq(b), Value::Seq(o)) if field.is_some_and(|f| UNION_FIELDS.contains(&f)) => {
            for item in o {
                if !b.iter().any(|x| same(x, &item)) {
                    b.push(item);
                }
            }
        }
        (Value::Seq(b), Value::Seq(o)) if field == Some("mounts") => {
            for item in o {
                let target = mount_target(&item);
                match b.iter_mut().find(|x| target.is_some() && mount_target(x) == target) {
                    Some(slot) => *slot = item,
                    None => b.push(item),
                }
            }
        }
        (_, value) if !matches!(value, Value::Null) && field.is_some_and(|f| f == "env" || f == "depends_on") => {
            let over = Node { pos: over.pos, value };
            let env = field == Some("env");
            match (as_named_map(base, env), as_named_map(&over, env)) {
                (Some(b), Some(o)) => {
                    base.value = b;
                    let o = Node {
                        pos: over.pos,
                        value: o,
                    };
                    merge_at(base, o, path);
                }
                _ => *base = over,
            }
        }
        (_, value) => {
            *base = Node { pos: over.pos, value };
        }
    }
}

/// The field name when `path` is `containers.NAME.FIELD`.
fn container_field(path: &[String]) -> Option<&str> {
    match path {
        [top, _, field] if top == "containers" => Some(field.as_str()),
        _ => None,
    }
}

/// Two nodes with the same value, wherever they were written.
fn same(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Seq(x), Value::Seq(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| ka.name == kb.name && same(va, vb))
        }
        (x, y) => x == y,
    }
}

/// The guest path of a mount (`host:guest[:ro]` or `{target: ...}`), trailing `/` dropped.
fn mount_target(node: &Node) -> Option<String> {
    let target = match &node.value {
        Value::Str(s) => s.split(':').nth(1)?.to_string(),
        Value::Map(m) => match &m.iter().find(|(k, _)| k.name == "target")?.1.value {
            Value::Str(s) => s.clone(),
            _ => return None,
        },
        _ => return None,
    };
    let trimmed = target.trim_end_matches('/');
    Some(if trimmed.is_empty() {
        target
    } else {
        trimmed.to_string()
    })
}

/// `env` or `depends_on` as a mapping by name: a mapping as is; a list of `KEY=VALUE`
/// (env) or of names (depends_on, each `started`). `None` when a list item has another
/// shape, so the later value replaces and the decoder reports the item.
fn as_named_map(node: &Node, env: bool) -> Option<Value> {
    match &node.value {
        Value::Map(m) => Some(Value::Map(m.clone())),
        Value::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let Value::Str(s) = &item.value else { return None };
                let (name, value) = if env {
                    let (k, v) = s.split_once('=')?;
                    (k.to_string(), Value::Str(v.to_string()))
                } else {
                    (s.clone(), Value::Null)
                };
                let key = Key { pos: item.pos, name };
                let pos: Pos = item.pos;
                match out.iter_mut().find(|(k, _): &&mut (Key, Node)| k.name == key.name) {
                    Some(slot) => *slot = (key, Node { pos, value }),
                    None => out.push((key, Node { pos, value })),
                }
            }
            Some(Value::Map(out))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{parse, set_file};

    fn merged(a: &str, b: &str) -> Node {
        let (mut base, _) = parse(a).unwrap();
        let (mut over, _) = parse(b).unwrap();
        set_file(&mut base, 0);
        set_file(&mut over, 1);
        merge(&mut base, over);
        base
    }

    fn get<'n>(node: &'n Node, path: &[&str]) -> &'n Node {
        path.iter().fold(node, |n, k| match &n.value {
            Value::Map(m) => &m.iter().find(|(key, _)| key.name == *k).expect(k).1,
            other => panic!("{k}: not a mapping: {other:?}"),
        })
    }

    fn strings(node: &Node) -> Vec<String> {
        match &node.value {
            Value::Seq(items) => items.iter().filter_map(|i| i.value.scalar_text()).collect(),
            other => panic!("not a list: {other:?}"),
        }
    }

    #[test]
    fn scalars_replace_and_keep_the_later_position() {
        let n = merged(
            "containers:\n  app:\n    image: a.wasm\n    replicas: 1\n",
            "containers:\n  app:\n    replicas: 3\n",
        );
        let r = get(&n, &["containers", "app", "replicas"]);
        assert_eq!(r.value, Value::Int(3));
        assert_eq!((r.pos.file, r.pos.line), (1, 3));
        let i = get(&n, &["containers", "app", "image"]);
        assert_eq!((i.pos.file, i.value.scalar_text().unwrap()), (0, "a.wasm".into()));
    }

    #[test]
    fn lists_of_grants_are_unions_in_order() {
        let n = merged(
            "containers:\n  app:\n    capabilities: [timers, messaging]\n    publish: [a/]\n    args: [x, y]\n",
            "containers:\n  app:\n    capabilities: [messaging, sensors]\n    publish: [b/]\n    args: [z]\n",
        );
        let c = get(&n, &["containers", "app"]);
        assert_eq!(strings(get(c, &["capabilities"])), ["timers", "messaging", "sensors"]);
        assert_eq!(strings(get(c, &["publish"])), ["a/", "b/"]);
        assert_eq!(
            strings(get(c, &["args"])),
            ["z"],
            "args are replaced, as Compose's command"
        );
    }

    #[test]
    fn mounts_are_keyed_by_guest_path() {
        let n = merged(
            "containers:\n  app:\n    mounts: [./a:/data, ./logs:/logs/]\n",
            "containers:\n  app:\n    mounts: [\"./b:/data:ro\", {source: ./c, target: /logs}, ./x:/x]\n",
        );
        let m = get(&n, &["containers", "app", "mounts"]);
        let Value::Seq(items) = &m.value else { panic!() };
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].value.scalar_text().unwrap(), "./b:/data:ro");
        assert!(matches!(items[1].value, Value::Map(_)));
        assert_eq!(items[2].value.scalar_text().unwrap(), "./x:/x");
    }

    #[test]
    fn env_and_depends_on_merge_by_name_across_forms() {
        let n = merged(
            "containers:\n  app:\n    env: [A=1, B=2]\n    depends_on: [db]\n",
            "containers:\n  app:\n    env: {B: 3, C: 4}\n    depends_on: {init: {condition: service_completed_successfully}}\n",
        );
        let env = get(&n, &["containers", "app", "env"]);
        assert_eq!(get(env, &["A"]).value.scalar_text().unwrap(), "1");
        assert_eq!(get(env, &["B"]).value, Value::Int(3));
        assert_eq!(get(env, &["B"]).pos.file, 1);
        assert_eq!(get(env, &["C"]).value, Value::Int(4));
        let deps = get(&n, &["containers", "app", "depends_on"]);
        assert_eq!(get(deps, &["db"]).value, Value::Null);
        assert!(matches!(get(deps, &["init"]).value, Value::Map(_)));
    }

    #[test]
    fn new_containers_and_sections_are_added_and_null_resets() {
        let n = merged(
            "containers:\n  app:\n    image: a.wasm\n    publish: [a/]\n",
            "containers:\n  app:\n    publish:\n  extra:\n    image: e.wasm\nwatch: true\n",
        );
        assert_eq!(get(&n, &["containers", "app", "publish"]).value, Value::Null);
        assert_eq!(get(&n, &["containers", "extra", "image"]).pos.file, 1);
        assert_eq!(get(&n, &["watch"]).value, Value::Bool(true));
    }
}
