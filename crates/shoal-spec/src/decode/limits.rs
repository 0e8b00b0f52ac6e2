//! `limits:`: memory, CPU share and the per-container counts, with the keys people bring
//! from elsewhere (`cpus`, `pids`, ...) answered with what to write instead.

use super::Ctx;
use crate::diagnostic::did_you_mean_hint;
use crate::model::{CpuShare, Limits};
use crate::node::{Key, Node, Value};
use crate::schema::ScalarFile;
use crate::units::{cpu_milli, parse_cpu, parse_memory};
use schemars::JsonSchema;

/// Keys people write under `limits:` that shoal does not have, with what to write instead.
const LIMIT_LOOKALIKES: &[(&str, &str, &str)] = &[
    // (key, message, hint)
    (
        "cpus",
        "shoal calls it `limits.cpu`",
        "write `cpu: 0.5` (a share of one core) or `cpu: 50%`; to pin to cores, `cpus:` goes beside `limits`, not in it",
    ),
    ("timers", "shoal calls it `limits.max_timers`", "write `max_timers: 16`"),
    (
        "subscriptions",
        "shoal calls it `limits.max_subscriptions`",
        "write `max_subscriptions: 64`",
    ),
    (
        "mailbox",
        "shoal calls it `limits.queue`",
        "write `queue: 64` (messages)",
    ),
    (
        "stack",
        "the wasm stack depth is one setting for the whole process (wasmtime sets it per engine), not per container",
        "start shoal with `--max-wasm-stack SIZE` (default 512KiB)",
    ),
    (
        "fuel",
        "shoal meters CPU by time, not by fuel",
        "write `cpu: 0.5` (a share of one core)",
    ),
    ("pids", "a WebAssembly guest cannot start processes", "remove `pids`"),
    // Descriptor limit (issue 16, fault 1): the names other tools use for it.
    (
        "nofile",
        "shoal calls it `limits.max_open_files`",
        "write `max_open_files: 256`",
    ),
    (
        "files",
        "shoal calls it `limits.max_open_files`",
        "write `max_open_files: 256`",
    ),
    (
        "open_files",
        "shoal calls it `limits.max_open_files`",
        "write `max_open_files: 256`",
    ),
];

pub(super) fn decode_limits(m: &[(Key, Node)], key: &str, ctx: &mut Ctx) -> Limits {
    let mut limits = Limits::default();
    for (k, v) in m {
        let kp = format!("{key}.{}", k.name);
        if let Some((_, message, hint)) = LIMIT_LOOKALIKES.iter().find(|(name, ..)| *name == k.name) {
            ctx.error(
                k.pos,
                &kp,
                format!("`limits.{}`: {message}", k.name),
                Some((*hint).into()),
            );
            continue;
        }
        if !LimitsFile::KEYS.contains(&k.name.as_str()) {
            let hint = did_you_mean_hint(&k.name, LimitsFile::KEYS.iter().copied());
            ctx.error(k.pos, &kp, format!("unknown key `{}` in `limits`", k.name), hint);
            continue;
        }
        if matches!(v.value, Value::Null) {
            continue;
        }
        match k.name.as_str() {
            "memory" => {
                if let Some(bytes) = decode_size(v, &kp, &MEMORY, ctx) {
                    limits.memory = Some(bytes);
                }
            }
            "message_region" => {
                if let Some(bytes) = decode_size(v, &kp, &MESSAGE_REGION, ctx) {
                    limits.message_region = bytes;
                }
            }
            "cpu" => limits.cpu = decode_cpu_limit(v, &kp, ctx).or(limits.cpu),
            name => {
                let Some(n) = decode_count_limit(v, &kp, name, ctx) else {
                    continue;
                };
                match name {
                    "max_timers" => limits.max_timers = n,
                    "queue" => limits.queue = n,
                    "max_open_files" => limits.max_open_files = n,
                    _ => limits.max_subscriptions = n,
                }
            }
        }
    }
    limits
}

/// A size limit's name and bounds, with why each bound is where it is.
struct SizeLimit {
    name: &'static str,
    min: u64,
    min_why: &'static str,
    max: u64,
    max_why: &'static str,
}

/// `limits.memory`: at least one wasm page, at most what a wasm32 memory can be.
const MEMORY: SizeLimit = SizeLimit {
    name: "memory",
    min: 64 << 10,
    min_why: "64KiB (one wasm page)",
    max: 4 << 30,
    max_why: "4GiB (a wasm32 memory cannot grow further)",
};

/// `limits.message_region`: room for one largest message (64 KiB of payload plus topic,
/// content type and the region's guard: two pages), and no more than a 64 MiB memory.
const MESSAGE_REGION: SizeLimit = SizeLimit {
    name: "message_region",
    min: 128 << 10,
    min_why: "128KiB (room for one largest message)",
    max: 64 << 20,
    max_why: "64MiB",
};

fn decode_size(v: &Node, kp: &str, limit: &SizeLimit, ctx: &mut Ctx) -> Option<u64> {
    let name = limit.name;
    let parsed = match &v.value {
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        Value::Str(s) => parse_memory(s).map_err(|e| e.to_string()),
        other => Err(format!(
            "`limits.{name}` must be a size such as `1MiB`, found {}",
            other.kind()
        )),
    };
    match parsed {
        Ok(b) if b < limit.min => ctx.error(
            v.pos,
            kp,
            format!("`limits.{name}` must be at least {}, found {b} bytes", limit.min_why),
            None,
        ),
        Ok(b) if b > limit.max => ctx.error(
            v.pos,
            kp,
            format!("`limits.{name}` must be at most {}, found {b} bytes", limit.max_why),
            None,
        ),
        Ok(b) => return Some(b),
        Err(e) => ctx.error(v.pos, kp, e, None),
    }
    None
}

fn decode_cpu_limit(v: &Node, kp: &str, ctx: &mut Ctx) -> Option<CpuShare> {
    let milli = match &v.value {
        Value::Int(i) => u32::try_from(*i).ok().and_then(|i| i.checked_mul(1000)).ok_or(()),
        Value::Float(f) => cpu_milli(f * 1000.0).ok_or(()),
        Value::Str(s) => match parse_cpu(s) {
            Ok(m) => Ok(m),
            Err(e) => {
                ctx.error(v.pos, kp, e.to_string(), None);
                return None;
            }
        },
        other => {
            ctx.error(
                v.pos,
                kp,
                format!(
                    "`limits.cpu` must be a share of a core such as `0.25`, `25%` or `1.5`, found {}",
                    other.kind()
                ),
                None,
            );
            return None;
        }
    };
    if let Some(share) = milli.ok().and_then(CpuShare::from_milli) {
        return Some(share);
    }
    let written = match &v.value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        _ => String::new(),
    };
    ctx.error(
        v.pos,
        kp,
        format!("`limits.cpu` must be between 0.01 (1%) and 1024 (cores), found `{written}`"),
        Some("a share of one core such as `0.25` or `25%`; 1 or more means never throttled (a guest runs on one thread, so one core is the most it can use)".into()),
    );
    None
}

fn decode_count_limit(v: &Node, kp: &str, name: &str, ctx: &mut Ctx) -> Option<u32> {
    let max = Limits::MAX_COUNT;
    match &v.value {
        Value::Int(i) if (1..=i64::from(max)).contains(i) => u32::try_from(*i).ok(),
        Value::Int(i) => {
            ctx.error(
                v.pos,
                kp,
                format!("`limits.{name}` must be between 1 and {max}, found {i}"),
                None,
            );
            None
        }
        other => {
            ctx.error(
                v.pos,
                kp,
                format!("`limits.{name}` must be a whole number, found {}", other.kind()),
                None,
            );
            None
        }
    }
}

// The file format of this section, as the JSON schema describes it (see `schema.rs`).

/// Resource limits.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct LimitsFile {
    /// Cap on linear memory plus tables: bytes, or with a unit (`512KiB`, `1MiB`, `4MB`). From 64KiB (one wasm page) to 4GiB. Growth past it fails as wasm specifies (`memory.grow` returns -1) and is reported. Default `64MiB`.
    pub memory: Option<ScalarFile>,
    /// Share of one core: a fraction (`0.25`) or a percentage (`25%`), from 0.01 to 1024. A guest over its share is paused at the next epoch tick (10 ms) until it is back within it. A guest runs on one thread, so 1 or more (`1.5`, `150%`) means never throttled. Default: no cap (a busy guest still yields to the others every tick).
    pub cpu: Option<ScalarFile>,
    /// Timers the container may hold at once (1 to 65536); `ocre_timer_create` beyond returns -12. Default 64.
    #[schemars(range(min = 1, max = 65536))]
    pub max_timers: Option<u32>,
    /// Messages queued for the container (1 to 65536); when full the oldest is dropped and counted. Default 256.
    #[schemars(range(min = 1, max = 65536))]
    pub queue: Option<u32>,
    /// Topic prefixes the container may subscribe to (1 to 65536); `ocre_subscribe_message` beyond returns -12. Default 256.
    #[schemars(range(min = 1, max = 65536))]
    pub max_subscriptions: Option<u32>,
    /// Guest memory the host may add, in whole 64 KiB pages at the end of the guest's memory, to hold the copies of received messages the guest has not freed yet (`ocre_messaging_free_module_event_data`), from `128KiB` (one largest message) to `64MiB`. A message that does not fit waits, queued, until the guest frees one. Default `320KiB` (four largest messages).
    pub message_region: Option<ScalarFile>,
    /// Files and folders the container may hold open at once (1 to 65536); an open beyond returns WASI `EMFILE` to this guest only. Each is a descriptor of the shoal process, which keeps a reserve for its control socket and logs. Default 256.
    #[schemars(range(min = 1, max = 65536))]
    pub max_open_files: Option<u32>,
}

impl LimitsFile {
    pub const KEYS: &'static [&'static str] = &[
        "memory",
        "cpu",
        "max_timers",
        "queue",
        "max_subscriptions",
        "message_region",
        "max_open_files",
    ];
}
