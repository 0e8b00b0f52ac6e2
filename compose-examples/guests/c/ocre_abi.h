/*
 * ocre_abi.h - the `env` imports shoal serves to C guests (Ocre-compatible guest ABI).
 *
 * Written for shoal from the ABI description in ABI-NOTES.md; every function returns 0 on
 * success and a negated errno on failure unless noted. Pointers are offsets into the
 * guest's own linear memory; strings are NUL-terminated.
 */
#ifndef SHOAL_OCRE_ABI_H
#define SHOAL_OCRE_ABI_H

#include <stdint.h>

#define OCRE_SUCCESS 0

/* Event types (first slot of ocre_get_event, first argument of ocre_register_dispatcher). */
#define OCRE_EVENT_TIMER 0
#define OCRE_EVENT_GPIO 1
#define OCRE_EVENT_SENSOR 2
#define OCRE_EVENT_MESSAGE 3

#define OCRE_IMPORT(name) __attribute__((import_module("env"), import_name(#name)))

/* time and events */
OCRE_IMPORT(ocre_sleep) int ocre_sleep(int ms);
OCRE_IMPORT(ocre_get_event)
int ocre_get_event(uint32_t *type, uint32_t *id, uint32_t *port, uint32_t *state,
                   uint32_t *extra, uint32_t *len);
OCRE_IMPORT(ocre_register_dispatcher) int ocre_register_dispatcher(int type, const char *name);

/* timers */
OCRE_IMPORT(ocre_timer_create) int ocre_timer_create(int id);
OCRE_IMPORT(ocre_timer_start) int ocre_timer_start(int id, int interval_ms, int periodic);
OCRE_IMPORT(ocre_timer_stop) int ocre_timer_stop(int id);
OCRE_IMPORT(ocre_timer_delete) int ocre_timer_delete(int id);
OCRE_IMPORT(ocre_timer_get_remaining) int ocre_timer_get_remaining(int id);

/* messaging */
OCRE_IMPORT(ocre_publish_message)
int ocre_publish_message(const char *topic, const char *content_type, const void *payload,
                         int len);
OCRE_IMPORT(ocre_subscribe_message) int ocre_subscribe_message(const char *topic_prefix);
OCRE_IMPORT(ocre_messaging_free_module_event_data)
int ocre_messaging_free_module_event_data(uint32_t topic, uint32_t content_type,
                                          uint32_t payload);

/* sensors (see ABI-NOTES.md for the exact contract). Channel types, as numbered by the Ocre
 * SDK's sensor_channel_t; ocre_sensors_read takes a channel's TYPE (what
 * ocre_sensors_get_channel_type returned), not its index. Errors are negated errno values,
 * for ocre_sensors_read as a double. */
#define SENSOR_CHANNEL_ACCELERATION 0
#define SENSOR_CHANNEL_GYRO 1
#define SENSOR_CHANNEL_MAGNETIC_FIELD 2
#define SENSOR_CHANNEL_LIGHT 3
#define SENSOR_CHANNEL_PRESSURE 4
#define SENSOR_CHANNEL_PROXIMITY 5
#define SENSOR_CHANNEL_HUMIDITY 6
#define SENSOR_CHANNEL_TEMPERATURE 7
OCRE_IMPORT(ocre_sensors_init) int ocre_sensors_init(void);
OCRE_IMPORT(ocre_sensors_discover) int ocre_sensors_discover(void);
OCRE_IMPORT(ocre_sensors_open) int ocre_sensors_open(int handle);
OCRE_IMPORT(ocre_sensors_get_handle) int ocre_sensors_get_handle(int index);
OCRE_IMPORT(ocre_sensors_get_channel_count) int ocre_sensors_get_channel_count(int handle);
OCRE_IMPORT(ocre_sensors_get_channel_type)
int ocre_sensors_get_channel_type(int handle, int channel);
OCRE_IMPORT(ocre_sensors_read) double ocre_sensors_read(int handle, int channel_type);
OCRE_IMPORT(ocre_sensors_open_by_name) int ocre_sensors_open_by_name(const char *name);
OCRE_IMPORT(ocre_sensors_get_handle_by_name)
int ocre_sensors_get_handle_by_name(const char *name);
OCRE_IMPORT(ocre_sensors_get_channel_count_by_name)
int ocre_sensors_get_channel_count_by_name(const char *name);
OCRE_IMPORT(ocre_sensors_get_channel_type_by_name)
int ocre_sensors_get_channel_type_by_name(const char *name, int channel);
OCRE_IMPORT(ocre_sensors_read_by_name)
double ocre_sensors_read_by_name(const char *name, int channel_type);
OCRE_IMPORT(ocre_sensors_get_list) int ocre_sensors_get_list(int32_t *handles, int max);

#endif
