//! The host-function table: every `env` function shoal serves, written once.
//!
//! Each row is a named constant so the host code registers and gates a function by naming
//! its row (`abi::OCRE_SLEEP.name`, `begin(&abi::OCRE_PUBLISH_MESSAGE)`) instead of
//! spelling its name and capability again; [`HOST_FUNCTIONS`] collects the rows for the
//! static import check and for the test (in the runtime crate) that compares the table with
//! what the linker really registers, signatures included.

use crate::Capability;
use WasmType::{F64, I32};

/// A wasm value type as it appears in an import's signature. Only the four number types:
/// the Ocre ABI passes pointers as `i32` and has no reference or vector arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WasmType {
    I32,
    I64,
    F32,
    F64,
}

impl WasmType {
    /// The name the wasm text format uses (`i32`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            WasmType::I32 => "i32",
            WasmType::I64 => "i64",
            WasmType::F32 => "f32",
            WasmType::F64 => "f64",
        }
    }
}

impl std::fmt::Display for WasmType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One function of module `env`: its name, its wasm signature, and the grant it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostFn {
    pub name: &'static str,
    pub params: &'static [WasmType],
    pub results: &'static [WasmType],
    /// `None`: always available, or the grant depends on the arguments
    /// (`ocre_register_dispatcher` checks the capability of the event kind it is given).
    pub capability: Option<Capability>,
}

impl HostFn {
    /// The signature in the wasm text format, e.g. `(param i32 i32) (result f64)`, for
    /// messages about a guest that imports the function with another one.
    pub fn signature(&self) -> String {
        let group = |word: &str, types: &[WasmType]| {
            (!types.is_empty()).then(|| {
                let names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
                format!("({word} {})", names.join(" "))
            })
        };
        let groups: Vec<String> = [group("param", self.params), group("result", self.results)]
            .into_iter()
            .flatten()
            .collect();
        groups.join(" ")
    }

    /// The row for an `env` function name, if shoal serves it.
    pub fn find(name: &str) -> Option<&'static HostFn> {
        HOST_FUNCTIONS.iter().find(|f| f.name == name)
    }
}

pub const OCRE_SLEEP: HostFn = HostFn {
    name: "ocre_sleep",
    params: &[I32],
    results: &[I32],
    capability: None,
};

pub const OCRE_GET_EVENT: HostFn = HostFn {
    name: "ocre_get_event",
    params: &[I32, I32, I32, I32, I32, I32],
    results: &[I32],
    capability: None,
};

pub const OCRE_REGISTER_DISPATCHER: HostFn = HostFn {
    name: "ocre_register_dispatcher",
    params: &[I32, I32],
    results: &[I32],
    capability: None,
};

pub const UNAME: HostFn = HostFn {
    name: "uname",
    params: &[I32],
    results: &[I32],
    capability: None,
};

pub const OCRE_PUBLISH_MESSAGE: HostFn = HostFn {
    name: "ocre_publish_message",
    params: &[I32, I32, I32, I32],
    results: &[I32],
    capability: Some(Capability::Messaging),
};

pub const OCRE_SUBSCRIBE_MESSAGE: HostFn = HostFn {
    name: "ocre_subscribe_message",
    params: &[I32],
    results: &[I32],
    capability: Some(Capability::Messaging),
};

pub const OCRE_MESSAGING_FREE_MODULE_EVENT_DATA: HostFn = HostFn {
    name: "ocre_messaging_free_module_event_data",
    params: &[I32, I32, I32],
    results: &[I32],
    capability: Some(Capability::Messaging),
};

pub const OCRE_TIMER_CREATE: HostFn = HostFn {
    name: "ocre_timer_create",
    params: &[I32],
    results: &[I32],
    capability: Some(Capability::Timers),
};

pub const OCRE_TIMER_START: HostFn = HostFn {
    name: "ocre_timer_start",
    params: &[I32, I32, I32],
    results: &[I32],
    capability: Some(Capability::Timers),
};

pub const OCRE_TIMER_STOP: HostFn = HostFn {
    name: "ocre_timer_stop",
    params: &[I32],
    results: &[I32],
    capability: Some(Capability::Timers),
};

pub const OCRE_TIMER_DELETE: HostFn = HostFn {
    name: "ocre_timer_delete",
    params: &[I32],
    results: &[I32],
    capability: Some(Capability::Timers),
};

pub const OCRE_TIMER_GET_REMAINING: HostFn = HostFn {
    name: "ocre_timer_get_remaining",
    params: &[I32],
    results: &[I32],
    capability: Some(Capability::Timers),
};

pub const OCRE_SENSORS_INIT: HostFn = HostFn {
    name: "ocre_sensors_init",
    params: &[],
    results: &[I32],
    capability: Some(Capability::Sensors),
};

pub const OCRE_SENSORS_DISCOVER: HostFn = HostFn {
    name: "ocre_sensors_discover",
    params: &[],
    results: &[I32],
    capability: Some(Capability::Sensors),
};

pub const OCRE_SENSORS_OPEN: HostFn = HostFn {
    name: "ocre_sensors_open",
    params: &[I32],
    results: &[I32],
    capability: Some(Capability::Sensors),
};

pub const OCRE_SENSORS_GET_HANDLE: HostFn = HostFn {
    name: "ocre_sensors_get_handle",
    params: &[I32],
    results: &[I32],
    capability: Some(Capability::Sensors),
};

pub const OCRE_SENSORS_GET_CHANNEL_COUNT: HostFn = HostFn {
    name: "ocre_sensors_get_channel_count",
    params: &[I32],
    results: &[I32],
    capability: Some(Capability::Sensors),
};

pub const OCRE_SENSORS_GET_CHANNEL_TYPE: HostFn = HostFn {
    name: "ocre_sensors_get_channel_type",
    params: &[I32, I32],
    results: &[I32],
    capability: Some(Capability::Sensors),
};

pub const OCRE_SENSORS_READ: HostFn = HostFn {
    name: "ocre_sensors_read",
    params: &[I32, I32],
    results: &[F64],
    capability: Some(Capability::Sensors),
};

pub const OCRE_SENSORS_OPEN_BY_NAME: HostFn = HostFn {
    name: "ocre_sensors_open_by_name",
    params: &[I32],
    results: &[I32],
    capability: Some(Capability::Sensors),
};

pub const OCRE_SENSORS_GET_HANDLE_BY_NAME: HostFn = HostFn {
    name: "ocre_sensors_get_handle_by_name",
    params: &[I32],
    results: &[I32],
    capability: Some(Capability::Sensors),
};

pub const OCRE_SENSORS_GET_CHANNEL_COUNT_BY_NAME: HostFn = HostFn {
    name: "ocre_sensors_get_channel_count_by_name",
    params: &[I32],
    results: &[I32],
    capability: Some(Capability::Sensors),
};

pub const OCRE_SENSORS_GET_CHANNEL_TYPE_BY_NAME: HostFn = HostFn {
    name: "ocre_sensors_get_channel_type_by_name",
    params: &[I32, I32],
    results: &[I32],
    capability: Some(Capability::Sensors),
};

pub const OCRE_SENSORS_READ_BY_NAME: HostFn = HostFn {
    name: "ocre_sensors_read_by_name",
    params: &[I32, I32],
    results: &[F64],
    capability: Some(Capability::Sensors),
};

pub const OCRE_SENSORS_GET_LIST: HostFn = HostFn {
    name: "ocre_sensors_get_list",
    params: &[I32, I32],
    results: &[I32],
    capability: Some(Capability::Sensors),
};

// GPIO (capability `gpio`), as the SDK's `ocre_api.h` declares them: `(port, pin, ...)`
// forms and `*_by_name(name$, ...)` forms; every one returns an `int`.

pub const OCRE_GPIO_INIT: HostFn = HostFn {
    name: "ocre_gpio_init",
    params: &[],
    results: &[I32],
    capability: Some(Capability::Gpio),
};

pub const OCRE_GPIO_CONFIGURE: HostFn = HostFn {
    name: "ocre_gpio_configure",
    params: &[I32, I32, I32],
    results: &[I32],
    capability: Some(Capability::Gpio),
};

pub const OCRE_GPIO_PIN_SET: HostFn = HostFn {
    name: "ocre_gpio_pin_set",
    params: &[I32, I32, I32],
    results: &[I32],
    capability: Some(Capability::Gpio),
};

pub const OCRE_GPIO_PIN_GET: HostFn = HostFn {
    name: "ocre_gpio_pin_get",
    params: &[I32, I32],
    results: &[I32],
    capability: Some(Capability::Gpio),
};

pub const OCRE_GPIO_PIN_TOGGLE: HostFn = HostFn {
    name: "ocre_gpio_pin_toggle",
    params: &[I32, I32],
    results: &[I32],
    capability: Some(Capability::Gpio),
};

pub const OCRE_GPIO_REGISTER_CALLBACK: HostFn = HostFn {
    name: "ocre_gpio_register_callback",
    params: &[I32, I32],
    results: &[I32],
    capability: Some(Capability::Gpio),
};

pub const OCRE_GPIO_UNREGISTER_CALLBACK: HostFn = HostFn {
    name: "ocre_gpio_unregister_callback",
    params: &[I32, I32],
    results: &[I32],
    capability: Some(Capability::Gpio),
};

pub const OCRE_GPIO_CONFIGURE_BY_NAME: HostFn = HostFn {
    name: "ocre_gpio_configure_by_name",
    params: &[I32, I32],
    results: &[I32],
    capability: Some(Capability::Gpio),
};

pub const OCRE_GPIO_SET_BY_NAME: HostFn = HostFn {
    name: "ocre_gpio_set_by_name",
    params: &[I32, I32],
    results: &[I32],
    capability: Some(Capability::Gpio),
};

pub const OCRE_GPIO_GET_BY_NAME: HostFn = HostFn {
    name: "ocre_gpio_get_by_name",
    params: &[I32],
    results: &[I32],
    capability: Some(Capability::Gpio),
};

pub const OCRE_GPIO_TOGGLE_BY_NAME: HostFn = HostFn {
    name: "ocre_gpio_toggle_by_name",
    params: &[I32],
    results: &[I32],
    capability: Some(Capability::Gpio),
};

pub const OCRE_GPIO_REGISTER_CALLBACK_BY_NAME: HostFn = HostFn {
    name: "ocre_gpio_register_callback_by_name",
    params: &[I32],
    results: &[I32],
    capability: Some(Capability::Gpio),
};

pub const OCRE_GPIO_UNREGISTER_CALLBACK_BY_NAME: HostFn = HostFn {
    name: "ocre_gpio_unregister_callback_by_name",
    params: &[I32],
    results: &[I32],
    capability: Some(Capability::Gpio),
};

/// Every `env` function the runtime registers (not `env.memory`, which it creates itself).
pub const HOST_FUNCTIONS: &[HostFn] = &[
    OCRE_SLEEP,
    OCRE_GET_EVENT,
    OCRE_REGISTER_DISPATCHER,
    UNAME,
    OCRE_PUBLISH_MESSAGE,
    OCRE_SUBSCRIBE_MESSAGE,
    OCRE_MESSAGING_FREE_MODULE_EVENT_DATA,
    OCRE_TIMER_CREATE,
    OCRE_TIMER_START,
    OCRE_TIMER_STOP,
    OCRE_TIMER_DELETE,
    OCRE_TIMER_GET_REMAINING,
    OCRE_SENSORS_INIT,
    OCRE_SENSORS_DISCOVER,
    OCRE_SENSORS_OPEN,
    OCRE_SENSORS_GET_HANDLE,
    OCRE_SENSORS_GET_CHANNEL_COUNT,
    OCRE_SENSORS_GET_CHANNEL_TYPE,
    OCRE_SENSORS_READ,
    OCRE_SENSORS_OPEN_BY_NAME,
    OCRE_SENSORS_GET_HANDLE_BY_NAME,
    OCRE_SENSORS_GET_CHANNEL_COUNT_BY_NAME,
    OCRE_SENSORS_GET_CHANNEL_TYPE_BY_NAME,
    OCRE_SENSORS_READ_BY_NAME,
    OCRE_SENSORS_GET_LIST,
    OCRE_GPIO_INIT,
    OCRE_GPIO_CONFIGURE,
    OCRE_GPIO_PIN_SET,
    OCRE_GPIO_PIN_GET,
    OCRE_GPIO_PIN_TOGGLE,
    OCRE_GPIO_REGISTER_CALLBACK,
    OCRE_GPIO_UNREGISTER_CALLBACK,
    OCRE_GPIO_CONFIGURE_BY_NAME,
    OCRE_GPIO_SET_BY_NAME,
    OCRE_GPIO_GET_BY_NAME,
    OCRE_GPIO_TOGGLE_BY_NAME,
    OCRE_GPIO_REGISTER_CALLBACK_BY_NAME,
    OCRE_GPIO_UNREGISTER_CALLBACK_BY_NAME,
];
