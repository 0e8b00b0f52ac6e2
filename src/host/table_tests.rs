//! The ABI table and the linker agree: every function [`add_to_linker`] registers under
//! `env` has a row in `shoal_abi::HOST_FUNCTIONS` with the same signature, and every row is
//! registered. The static import check (`shoal config`) reads only the table, so a function
//! served but missing from it would be reported as unknown, and a row never registered
//! would pass the check and then fail to link.

use std::collections::BTreeMap;

use wasmtime::{Extern, Linker, Store, ValType};

use super::testutil::{config, engine, host, Collect, Data};
use super::{add_to_linker, HostFn, HostState, WasmType, HOST_FUNCTIONS};
use crate::broker::Broker;

type Signature = (Vec<Option<WasmType>>, Vec<Option<WasmType>>);

/// `None` for a type the table cannot express (which then never matches a row).
fn wasm_type(t: &ValType) -> Option<WasmType> {
    match t {
        ValType::I32 => Some(WasmType::I32),
        ValType::I64 => Some(WasmType::I64),
        ValType::F32 => Some(WasmType::F32),
        ValType::F64 => Some(WasmType::F64),
        _ => None,
    }
}

/// Every function registered under `env`, by name, with its signature.
fn registered() -> BTreeMap<String, Signature> {
    let engine = engine();
    let mut linker: Linker<Data> = Linker::new(&engine);
    add_to_linker(&mut linker, host).unwrap();
    let log = std::sync::Arc::new(Collect::default());
    let mut store = Store::new(
        &engine,
        Data {
            host: HostState::new(config("table", &[], &Broker::new(), &log)),
        },
    );
    let defined: Vec<(String, Extern)> = linker
        .iter(&mut store)
        .filter(|(module, _, _)| *module == "env")
        .map(|(_, name, item)| (name.to_string(), item))
        .collect();
    defined
        .into_iter()
        .filter_map(|(name, item)| {
            let func = item.into_func()?;
            let ty = func.ty(&store);
            let params = ty.params().map(|t| wasm_type(&t)).collect();
            let results = ty.results().map(|t| wasm_type(&t)).collect();
            Some((name, (params, results)))
        })
        .collect()
}

/// What differs between a table and the registered functions, one line per problem.
fn differences(table: &[HostFn], registered: &BTreeMap<String, Signature>) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, (params, results)) in registered {
        match table.iter().find(|f| f.name == name) {
            None => problems.push(format!("`{name}` is registered but missing from the ABI table")),
            Some(f) => {
                let want: Signature = (
                    f.params.iter().copied().map(Some).collect(),
                    f.results.iter().copied().map(Some).collect(),
                );
                if want != (params.clone(), results.clone()) {
                    problems.push(format!(
                        "`{name}` is registered as {params:?} -> {results:?}, the table says {}",
                        f.signature()
                    ));
                }
            }
        }
    }
    for f in table {
        if !registered.contains_key(f.name) {
            problems.push(format!("`{}` is in the ABI table but not registered", f.name));
        }
    }
    problems
}

#[test]
fn the_linker_registers_exactly_the_table() {
    let problems = differences(HOST_FUNCTIONS, &registered());
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_missing_extra_or_different_row_is_caught() {
    let registered = registered();
    let without_sleep: Vec<HostFn> = HOST_FUNCTIONS
        .iter()
        .copied()
        .filter(|f| f.name != "ocre_sleep")
        .collect();
    let problems = differences(&without_sleep, &registered);
    assert_eq!(
        problems,
        ["`ocre_sleep` is registered but missing from the ABI table"],
        "{problems:#?}"
    );

    let mut extra = HOST_FUNCTIONS.to_vec();
    extra.push(HostFn {
        name: "ocre_adc_read_by_name",
        ..shoal_abi::OCRE_SLEEP
    });
    let problems = differences(&extra, &registered);
    assert_eq!(
        problems,
        ["`ocre_adc_read_by_name` is in the ABI table but not registered"],
        "{problems:#?}"
    );

    let mut wrong = HOST_FUNCTIONS.to_vec();
    for f in &mut wrong {
        if f.name == "ocre_sensors_read" {
            f.results = &[WasmType::F32];
        }
    }
    let problems = differences(&wrong, &registered);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with("`ocre_sensors_read` is registered as"),
        "{problems:#?}"
    );
}
