//! Test harness: real wasmtime guests (WAT) whose exports `w_<import>` call each `env`
//! import with the given arguments. The imports are written from the ABI table, so a guest
//! here imports exactly what `shoal_abi::HOST_FUNCTIONS` says shoal serves.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use wasmtime::{Config, Engine, Instance, Linker, Memory, MemoryType, Module, Store, Val};

use super::{add_to_linker, HostConfig, HostFn, HostLimits, HostState, WasmType, HOST_FUNCTIONS};
use crate::broker::Broker;
use crate::logs::{LogSink, Stream};
use crate::spec::{Capability, Location, SensorSpec};

/// The text-format parameter and result lists of a table row, e.g. `("i32 i32", "f64")`.
fn signature(f: &HostFn) -> (String, String) {
    let list = |types: &[WasmType]| types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(" ");
    (list(f.params), list(f.results))
}

/// A guest importing every function; memory imported (`env.memory`, SDK style) and
/// exported, or defined, with `max` pages at most.
pub fn wat(import_memory: bool, max_pages: u32) -> String {
    let mut s = String::from("(module\n");
    for f in HOST_FUNCTIONS {
        let (name, (params, result)) = (f.name, signature(f));
        s += &format!("  (import \"env\" \"{name}\" (func ${name} (param {params}) (result {result})))\n");
    }
    if import_memory {
        s += &format!("  (import \"env\" \"memory\" (memory 2 {max_pages}))\n  (export \"memory\" (memory 0))\n");
    } else {
        s += &format!("  (memory (export \"memory\") 2 {max_pages})\n");
    }
    for f in HOST_FUNCTIONS {
        let (name, (params, result)) = (f.name, signature(f));
        let n = params.split_whitespace().count();
        let gets: String = (0..n).map(|i| format!("local.get {i} ")).collect();
        s += &format!("  (func (export \"w_{name}\") (param {params}) (result {result}) {gets}call ${name})\n");
    }
    s += "  (func (export \"message_callback\") (param i32 i32 i32 i32 i32))\n";
    s += "  (func (export \"timer_callback\") (param i32))\n";
    s += "  (func (export \"gpio_callback\") (param i32 i32 i32))\n";
    s += "  (func (export \"w_grow\") (param i32) (result i32) local.get 0 memory.grow)\n";
    s += ")\n";
    s
}

#[derive(Default)]
pub struct Collect(pub Mutex<Vec<(String, Stream, String)>>);

impl LogSink for Collect {
    fn line(&self, container: &str, stream: Stream, text: &str) {
        self.0
            .lock()
            .unwrap()
            .push((container.to_owned(), stream, text.to_owned()));
    }
}

impl Collect {
    pub fn warnings(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.1 == Stream::Warning)
            .map(|l| format!("{}: {}", l.0, l.2))
            .collect()
    }
}

pub struct Data {
    pub host: HostState,
}

pub fn host(d: &mut Data) -> &mut HostState {
    &mut d.host
}

pub fn engine() -> Engine {
    Engine::new(&Config::new()).unwrap()
}

pub fn config(name: &str, caps: &[Capability], broker: &Broker, log: &Arc<Collect>) -> HostConfig {
    HostConfig {
        container: name.to_owned(),
        capabilities: caps.iter().copied().collect::<BTreeSet<_>>(),
        capabilities_location: Location {
            file: "shoal.yaml".into(),
            line: 12,
            column: 5,
        },
        publish: None,
        subscribe: None,
        sensors: Vec::<SensorSpec>::new(),
        gpio: Vec::new(),
        broker: broker.clone(),
        log: log.clone(),
        limits: HostLimits::default(),
        counters: Default::default(),
        paused: None,
    }
}

pub const ALL: &[Capability] = &Capability::ALL;

pub struct Guest {
    pub store: Store<Data>,
    pub instance: Instance,
    pub memory: Memory,
}

impl Guest {
    pub async fn new(engine: &Engine, cfg: HostConfig) -> Guest {
        Self::with(engine, cfg, true, 64).await
    }

    pub async fn with(engine: &Engine, cfg: HostConfig, import_memory: bool, max_pages: u32) -> Guest {
        let module = Module::new(engine, wat(import_memory, max_pages)).unwrap();
        let mut linker = Linker::new(engine);
        add_to_linker(&mut linker, host).unwrap();
        let mut store = Store::new(
            engine,
            Data {
                host: HostState::new(cfg),
            },
        );
        if import_memory {
            let m = Memory::new_async(&mut store, MemoryType::new(2, Some(max_pages)))
                .await
                .unwrap();
            linker.define(&store, "env", "memory", m).unwrap();
        }
        let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
        let memory = instance.get_memory(&mut store, "memory").unwrap();
        Guest {
            store,
            instance,
            memory,
        }
    }

    pub async fn call(&mut self, import: &str, args: &[i32]) -> Val {
        let f = self.instance.get_func(&mut self.store, &format!("w_{import}")).unwrap();
        let params: Vec<Val> = args.iter().map(|&a| Val::I32(a)).collect();
        let mut results = [Val::I32(0)];
        f.call_async(&mut self.store, &params, &mut results).await.unwrap();
        results[0]
    }

    pub async fn i(&mut self, import: &str, args: &[i32]) -> i32 {
        self.call(import, args).await.unwrap_i32()
    }

    pub async fn f(&mut self, import: &str, args: &[i32]) -> f64 {
        self.call(import, args).await.unwrap_f64()
    }

    pub fn mem(&self) -> &[u8] {
        self.memory.data(&self.store)
    }

    pub fn write(&mut self, at: u32, bytes: &[u8]) {
        self.memory.write(&mut self.store, at as usize, bytes).unwrap();
    }

    /// Write a NUL-terminated string.
    pub fn cstr(&mut self, at: u32, s: &str) -> i32 {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.write(at, &b);
        at as i32
    }

    pub fn u32_at(&self, at: u32) -> u32 {
        let m = self.mem();
        u32::from_le_bytes(m[at as usize..at as usize + 4].try_into().unwrap())
    }

    pub fn cstr_at(&self, at: u32) -> String {
        let m = &self.mem()[at as usize..];
        let n = m.iter().position(|&b| b == 0).unwrap();
        String::from_utf8(m[..n].to_vec()).unwrap()
    }

    pub fn host(&self) -> &HostState {
        &self.store.data().host
    }

    /// `ocre_get_event` with slots at 64..88; returns (rc, six values).
    pub async fn get_event(&mut self) -> (i32, [u32; 6]) {
        let rc = self.i("ocre_get_event", &[64, 68, 72, 76, 80, 84]).await;
        let mut v = [0; 6];
        for (i, x) in v.iter_mut().enumerate() {
            *x = self.u32_at(64 + 4 * i as u32);
        }
        (rc, v)
    }
}
