/*
 * events.h - callback registration and the polling event loop for shoal C guests.
 *
 * Behaves like the Ocre SDK's loop, so that guests built here cost what SDK programs cost
 * (stack use, wake-ups, copies): ocre_process_events() calls ocre_get_event up to 5 times,
 * ocre_sleep(10) after each call and once more when no event came; a message is copied into
 * the loop's own stack buffers (topic and content type 128 bytes, payload 1,024 bytes), the
 * host's copies are freed, and the event goes to the first callback registered for a prefix
 * of its topic. Timer and GPIO events go to the callback registered for their id / pin+port.
 */
#ifndef SHOAL_EVENTS_H
#define SHOAL_EVENTS_H

#include <stdint.h>

/* The SDK's buffer sizes for one message's copies (ocre_api.h: OCRE_MAX_*_LEN). */
#define OCRE_MAX_TOPIC_LEN 128
#define OCRE_MAX_CONTENT_TYPE_LEN 128
#define OCRE_MAX_PAYLOAD_LEN 1024

typedef void (*timer_handler_t)(int id);
typedef void (*gpio_handler_t)(int pin, int port, int state);
/* topic and content_type are NUL-terminated copies on the loop's stack; payload holds len
 * bytes (at most OCRE_MAX_PAYLOAD_LEN) and is NUL-terminated when shorter than that. */
typedef void (*message_handler_t)(const char *topic, const char *content_type,
                                  const void *payload, uint32_t len);

/* Register a handler for timer `id` (also registers the `timer_callback` dispatcher). */
int ocre_register_timer_callback(int id, timer_handler_t handler);
/* Register a handler for messages whose topic starts with `prefix`. */
int ocre_register_message_callback(const char *prefix, message_handler_t handler);
/* Register a handler for edges on GPIO `pin` of `port` (registers the `gpio_callback`
 * dispatcher and asks the host for the pin's events with ocre_gpio_register_callback). */
int ocre_register_gpio_callback(int pin, int port, gpio_handler_t handler);
/* One round of polling and dispatch. Call it in a loop from main. */
void ocre_process_events(void);

#endif
