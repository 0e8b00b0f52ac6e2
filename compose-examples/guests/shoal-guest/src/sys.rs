//! Raw `env` imports, one for one with the guest ABI (see `ABI-NOTES.md` in the guest
//! workspace). All pointers are offsets into the guest's linear memory; strings are
//! NUL-terminated. Every `i32` result is 0 on success and a negated errno on failure,
//! unless a function says otherwise.
//!
//! These are `unsafe` and unchecked: prefer the safe API at the crate root.

#![allow(missing_docs)]

/// Event types written to the first slot by [`ocre_get_event`] and taken by
/// [`ocre_register_dispatcher`].
pub const EVENT_TIMER: i32 = 0;
pub const EVENT_GPIO: i32 = 1;
pub const EVENT_SENSOR: i32 = 2;
pub const EVENT_MESSAGE: i32 = 3;

/// `OCRE_SUCCESS`.
pub const SUCCESS: i32 = 0;
/// Returned by `ocre_get_event` when no event is queued (-ENOMSG).
pub const ENOMSG: i32 = -42;

#[link(wasm_import_module = "env")]
extern "C" {
    // --- time and events ---
    /// Sleep (park) for `ms` milliseconds (`ms` is unsigned). On shoal a sleep that directly
    /// follows an empty `ocre_get_event` ends early when an event arrives.
    pub fn ocre_sleep(ms: i32) -> i32;
    /// Non-blocking: write the next event for this container into six `u32` slots.
    /// Returns 0 when an event was written, non-zero (-42) when none is queued.
    pub fn ocre_get_event(
        type_: *mut u32,
        id: *mut u32,
        port: *mut u32,
        state: *mut u32,
        extra: *mut u32,
        len: *mut u32,
    ) -> i32;
    /// Declare that this guest handles events of `type_`; `name` is the NUL-terminated name of
    /// the export that handles them (the host checks that it exists).
    pub fn ocre_register_dispatcher(type_: i32, name: *const u8) -> i32;

    // --- timers ---
    pub fn ocre_timer_create(id: i32) -> i32;
    pub fn ocre_timer_start(id: i32, interval_ms: i32, periodic: i32) -> i32;
    pub fn ocre_timer_stop(id: i32) -> i32;
    pub fn ocre_timer_delete(id: i32) -> i32;
    /// Milliseconds left before the timer fires (>= 0), or a negative error.
    pub fn ocre_timer_get_remaining(id: i32) -> i32;

    // --- messaging ---
    pub fn ocre_publish_message(topic: *const u8, content_type: *const u8, payload: *const u8, len: i32) -> i32;
    pub fn ocre_subscribe_message(topic_prefix: *const u8) -> i32;
    /// Release the copies the host placed in guest memory for one message event.
    pub fn ocre_messaging_free_module_event_data(topic: i32, content_type: i32, payload: i32) -> i32;

    // --- sensors (signatures fixed by shoal; see ABI-NOTES.md) ---
    /// Initialise the sensor subsystem for this container. 0 or a negative error.
    pub fn ocre_sensors_init() -> i32;
    /// Number of sensors visible to this container (>= 0), or a negative error.
    pub fn ocre_sensors_discover() -> i32;
    /// Open the sensor with this handle. 0 or a negative error.
    pub fn ocre_sensors_open(handle: i32) -> i32;
    /// Handle of the sensor at discovery index `index` (0-based), or a negative error.
    pub fn ocre_sensors_get_handle(index: i32) -> i32;
    /// Number of channels of a sensor (>= 1), or a negative error.
    pub fn ocre_sensors_get_channel_count(handle: i32) -> i32;
    /// Channel type code (>= 0), or a negative error.
    pub fn ocre_sensors_get_channel_type(handle: i32, channel: i32) -> i32;
    /// Current value of a channel; NaN on any error.
    pub fn ocre_sensors_read(handle: i32, channel: i32) -> f64;
    pub fn ocre_sensors_open_by_name(name: *const u8) -> i32;
    pub fn ocre_sensors_get_handle_by_name(name: *const u8) -> i32;
    pub fn ocre_sensors_get_channel_count_by_name(name: *const u8) -> i32;
    pub fn ocre_sensors_get_channel_type_by_name(name: *const u8, channel: i32) -> i32;
    pub fn ocre_sensors_read_by_name(name: *const u8, channel: i32) -> f64;
    /// Write up to `max` sensor handles (`i32` each, little-endian) at `buf`.
    /// Returns the number written (>= 0), or a negative error.
    pub fn ocre_sensors_get_list(buf: *mut i32, max: i32) -> i32;
}
