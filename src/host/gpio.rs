//! `ocre_gpio_*`, served from the GPIO lines the compose file declares and grants.
//!
//! A container reaches only the lines in its own `gpio:` list: by the SDK's
//! `(port, pin)` numbers (a line's `port:`/`pin:` keys, else port 0 and pin = the line's
//! index in the list) or, in the `*_by_name` forms, by the line's name. Anything else (an
//! unknown port/pin or name, a line of another container) returns `-22` (EINVAL, the
//! reference runtime's code for a pin it does not have), bumps the `denied` counter and
//! logs one warning per container and pin. Every call needs the `gpio` capability.
//!
//! * `configure(port, pin, direction)`: `0` when `direction` (0 input, 1 output) is the
//!   declared one; the line was requested with its declared settings when the stack
//!   started, so configure only checks.
//! * `pin_set` / `set_by_name`: outputs only (non-zero state = 1). `pin_toggle` likewise.
//! * `pin_get` / `get_by_name`: `0` or `1`, logical (active-low applied).
//! * `register_callback` / `unregister_callback`: inputs only; each edge the line's `edge:`
//!   reports becomes an event `{type 1, id = pin, port, state}`, parked like messages: an
//!   event-wait `ocre_sleep` wakes at once.
//!
//! `-5` (EIO): the kernel refused a read or write of a `cdev` line (logged once).

use std::sync::Arc;

use wasmtime::{Caller, Linker};

use super::memory::{guest_memory, read_cstr};
use super::{Counters, Get, HostFn, HostState, DENIED, EINVAL, SUCCESS};
use crate::gpio::{GpioError, Line};
use shoal_abi as abi;

pub const EIO: i32 = -5;
const MAX_NAME: u32 = 256;

/// A line granted to the container, with the SDK numbers it answers to there.
#[derive(Clone)]
pub struct GrantedLine {
    pub port: u32,
    pub pin: u32,
    pub line: Arc<Line>,
}

/// Which line a call names.
#[derive(Clone, Copy)]
enum Target {
    Pin(i32, i32),
    Name(u32),
}

/// What a call does to the line it names.
#[derive(Clone, Copy)]
enum Op {
    Configure(i32),
    Set(i32),
    Get,
    Toggle,
    Register,
    Unregister,
}

impl HostState {
    /// The granted line `target` names, or the error to return (after one warning).
    fn gpio_line<T: 'static>(
        caller: &mut Caller<'_, T>,
        get: Get<T>,
        function: &'static HostFn,
        target: Target,
    ) -> Result<GrantedLine, i32> {
        get(caller.data_mut()).begin(function)?;
        let name = match target {
            Target::Name(ptr) => {
                let mem = guest_memory(caller, get).map_err(|_| EINVAL)?;
                let name = read_cstr(mem.data(&*caller), ptr, MAX_NAME).map_err(|_| EINVAL)?;
                Some(name.to_owned())
            }
            Target::Pin(..) => None,
        };
        let st = get(caller.data_mut());
        let found = st.gpio.iter().find(|g| match (&name, target) {
            (Some(n), _) => g.line.name() == n,
            (None, Target::Pin(port, pin)) => {
                i64::from(g.port) == i64::from(port) && i64::from(g.pin) == i64::from(pin)
            }
            (None, Target::Name(_)) => false,
        });
        if let Some(g) = found {
            return Ok(g.clone());
        }
        let what = match (&name, target) {
            (Some(n), _) => format!("line {n:?}"),
            (None, Target::Pin(port, pin)) => format!("port {port}, pin {pin}"),
            (None, Target::Name(_)) => String::new(),
        };
        Counters::bump(&st.counters.denied);
        let granted = if st.gpio.is_empty() {
            "it has none".to_string()
        } else {
            let list: Vec<String> = st
                .gpio
                .iter()
                .map(|g| format!("`{}` = port {}, pin {}", g.line.name(), g.port, g.pin))
                .collect();
            format!("it has {}", list.join("; "))
        };
        let loc = st.capabilities_location.clone();
        st.warn_once(&format!("gpio:{what}"), || {
            format!(
                "{} denied: {what} is not one of this container's GPIO lines ({granted}); list the line in the container's `gpio:` (near {loc})",
                function.name
            )
        });
        Err(DENIED)
    }

    fn gpio_op(&mut self, function: &'static HostFn, g: &GrantedLine, op: Op) -> i32 {
        let line = &g.line;
        let result = match op {
            Op::Configure(direction) => {
                let want = i32::from(line.is_output());
                if direction == want {
                    return SUCCESS;
                }
                let declared = if line.is_output() { "output" } else { "input" };
                return self.gpio_refuse(
                    function,
                    line,
                    &format!("direction {direction} asked, the line is declared `{declared}` (0 input, 1 output)"),
                );
            }
            Op::Set(_) | Op::Toggle if !line.is_output() => {
                return self.gpio_refuse(function, line, "the line is declared `input`");
            }
            Op::Register | Op::Unregister if line.is_output() => {
                return self.gpio_refuse(
                    function,
                    line,
                    "the line is declared `output`; callbacks are for inputs",
                );
            }
            Op::Set(state) => line.set(state != 0).map(|()| SUCCESS),
            Op::Toggle => line.get().and_then(|v| line.set(!v)).map(|()| SUCCESS),
            Op::Get => line.get().map(i32::from),
            Op::Register => {
                line.listen(self.gpio_inbox.get_or_insert_with(Default::default), g.port, g.pin);
                Ok(SUCCESS)
            }
            Op::Unregister => Ok(if self.gpio_inbox.as_ref().is_some_and(|inbox| line.unlisten(inbox)) {
                SUCCESS
            } else {
                EINVAL
            }),
        };
        result.unwrap_or_else(|e: GpioError| {
            let name = line.name().to_owned();
            self.warn_once(&format!("gpio-io:{name}"), || {
                format!("{}: {e}; the call returns -5 (EIO)", function.name)
            });
            EIO
        })
    }

    fn gpio_refuse(&mut self, function: &'static HostFn, line: &Line, why: &str) -> i32 {
        let name = line.name().to_owned();
        let location = line.spec().location.clone();
        self.warn_once(&format!("gpio-use:{}:{name}", function.name), || {
            format!(
                "{} refused on GPIO line `{name}` (declared at {location}): {why}",
                function.name
            )
        });
        EINVAL
    }
}

fn call<T: 'static>(caller: &mut Caller<'_, T>, get: Get<T>, function: &'static HostFn, target: Target, op: Op) -> i32 {
    match HostState::gpio_line(caller, get, function, target) {
        Ok(g) => get(caller.data_mut()).gpio_op(function, &g, op),
        Err(e) => e,
    }
}

pub(crate) fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: Get<T>) -> wasmtime::Result<()> {
    linker.func_wrap("env", abi::OCRE_GPIO_INIT.name, move |mut caller: Caller<'_, T>| {
        get(caller.data_mut())
            .begin(&abi::OCRE_GPIO_INIT)
            .map_or_else(|e| e, |()| SUCCESS)
    })?;
    // (port, pin, value) forms.
    linker.func_wrap(
        "env",
        abi::OCRE_GPIO_CONFIGURE.name,
        move |mut c: Caller<'_, T>, port: i32, pin: i32, dir: i32| {
            call(
                &mut c,
                get,
                &abi::OCRE_GPIO_CONFIGURE,
                Target::Pin(port, pin),
                Op::Configure(dir),
            )
        },
    )?;
    linker.func_wrap(
        "env",
        abi::OCRE_GPIO_PIN_SET.name,
        move |mut c: Caller<'_, T>, port: i32, pin: i32, state: i32| {
            call(
                &mut c,
                get,
                &abi::OCRE_GPIO_PIN_SET,
                Target::Pin(port, pin),
                Op::Set(state),
            )
        },
    )?;
    let pin_ops: [(&'static HostFn, Op); 4] = [
        (&abi::OCRE_GPIO_PIN_GET, Op::Get),
        (&abi::OCRE_GPIO_PIN_TOGGLE, Op::Toggle),
        (&abi::OCRE_GPIO_REGISTER_CALLBACK, Op::Register),
        (&abi::OCRE_GPIO_UNREGISTER_CALLBACK, Op::Unregister),
    ];
    for (f, op) in pin_ops {
        linker.func_wrap("env", f.name, move |mut c: Caller<'_, T>, port: i32, pin: i32| {
            call(&mut c, get, f, Target::Pin(port, pin), op)
        })?;
    }
    add_by_name(linker, get)
}

/// The `*_by_name(name$, ...)` forms.
fn add_by_name<T: Send + 'static>(linker: &mut Linker<T>, get: Get<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        abi::OCRE_GPIO_CONFIGURE_BY_NAME.name,
        move |mut c: Caller<'_, T>, name: u32, dir: i32| {
            call(
                &mut c,
                get,
                &abi::OCRE_GPIO_CONFIGURE_BY_NAME,
                Target::Name(name),
                Op::Configure(dir),
            )
        },
    )?;
    linker.func_wrap(
        "env",
        abi::OCRE_GPIO_SET_BY_NAME.name,
        move |mut c: Caller<'_, T>, name: u32, state: i32| {
            call(
                &mut c,
                get,
                &abi::OCRE_GPIO_SET_BY_NAME,
                Target::Name(name),
                Op::Set(state),
            )
        },
    )?;
    let name_ops: [(&'static HostFn, Op); 4] = [
        (&abi::OCRE_GPIO_GET_BY_NAME, Op::Get),
        (&abi::OCRE_GPIO_TOGGLE_BY_NAME, Op::Toggle),
        (&abi::OCRE_GPIO_REGISTER_CALLBACK_BY_NAME, Op::Register),
        (&abi::OCRE_GPIO_UNREGISTER_CALLBACK_BY_NAME, Op::Unregister),
    ];
    for (f, op) in name_ops {
        linker.func_wrap("env", f.name, move |mut c: Caller<'_, T>, name: u32| {
            call(&mut c, get, f, Target::Name(name), op)
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
