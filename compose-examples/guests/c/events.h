/*
 * events.h - callback registration and the polling event loop for shoal C guests.
 *
 * Behaves like the Ocre SDK's loop: ocre_process_events() calls ocre_get_event up to 5
 * times, ocre_sleep(10) after each call and once more when no event came, and dispatches
 * each event to the callback registered for it.
 */
#ifndef SHOAL_EVENTS_H
#define SHOAL_EVENTS_H

#include <stdint.h>

typedef void (*timer_handler_t)(int id);
/* topic, content_type and payload are NUL-terminated copies on the caller's stack. */
typedef void (*message_handler_t)(const char *topic, const char *content_type,
                                  const void *payload, uint32_t len);

/* Register a handler for timer `id` (also registers the `timer_callback` dispatcher). */
int ocre_register_timer_callback(int id, timer_handler_t handler);
/* Register a handler for messages whose topic starts with `prefix`. */
int ocre_register_message_callback(const char *prefix, message_handler_t handler);
/* One round of polling and dispatch. Call it in a loop from main. */
void ocre_process_events(void);

#endif
