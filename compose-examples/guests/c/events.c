/* events.c - see events.h. */
#include <stdio.h>
#include <string.h>

#include "events.h"
#include "ocre_abi.h"

#define MAX_TIMERS 8
#define MAX_SUBS 8
#define TOPIC_MAX 128
#define PAYLOAD_MAX 1025

static struct {
    int id;
    timer_handler_t fn;
} timers[MAX_TIMERS];
static int n_timers;

static struct {
    char prefix[TOPIC_MAX];
    message_handler_t fn;
} subs[MAX_SUBS];
static int n_subs;

static int timer_dispatcher_registered;
static int message_dispatcher_registered;

int ocre_register_timer_callback(int id, timer_handler_t handler) {
    if (!timer_dispatcher_registered) {
        int rc = ocre_register_dispatcher(OCRE_EVENT_TIMER, "timer_callback");
        if (rc != OCRE_SUCCESS) {
            return rc;
        }
        timer_dispatcher_registered = 1;
    }
    for (int i = 0; i < n_timers; i++) {
        if (timers[i].id == id) {
            timers[i].fn = handler;
            return OCRE_SUCCESS;
        }
    }
    if (n_timers == MAX_TIMERS) {
        return -12; /* ENOMEM */
    }
    timers[n_timers].id = id;
    timers[n_timers].fn = handler;
    n_timers++;
    return OCRE_SUCCESS;
}

int ocre_register_message_callback(const char *prefix, message_handler_t handler) {
    if (!message_dispatcher_registered) {
        int rc = ocre_register_dispatcher(OCRE_EVENT_MESSAGE, "message_callback");
        if (rc != OCRE_SUCCESS) {
            return rc;
        }
        message_dispatcher_registered = 1;
    }
    if (prefix == NULL || strlen(prefix) >= TOPIC_MAX) {
        return -22; /* EINVAL */
    }
    if (n_subs == MAX_SUBS) {
        return -12;
    }
    strcpy(subs[n_subs].prefix, prefix);
    subs[n_subs].fn = handler;
    n_subs++;
    return OCRE_SUCCESS;
}

/* Exported: named by ocre_register_dispatcher; also usable by a host that calls it. */
__attribute__((export_name("timer_callback"))) void timer_callback(int id) {
    for (int i = 0; i < n_timers; i++) {
        if (timers[i].id == id && timers[i].fn) {
            timers[i].fn(id);
        }
    }
}

static void copy_str(char *dst, size_t cap, uint32_t src) {
    if (src == 0) {
        dst[0] = '\0';
        return;
    }
    strncpy(dst, (const char *)(uintptr_t)src, cap - 1);
    dst[cap - 1] = '\0';
}

/* Exported: copies the host's message data to the stack, frees it, dispatches by prefix. */
__attribute__((export_name("message_callback"))) void
message_callback(int id, int topic_off, int ct_off, int payload_off, int len) {
    char topic[TOPIC_MAX];
    char ct[TOPIC_MAX];
    char payload[PAYLOAD_MAX];
    uint32_t n = (uint32_t)len;
    (void)id;
    copy_str(topic, sizeof topic, (uint32_t)topic_off);
    copy_str(ct, sizeof ct, (uint32_t)ct_off);
    if (n > PAYLOAD_MAX - 1) {
        n = PAYLOAD_MAX - 1;
    }
    if (payload_off != 0 && n > 0) {
        memcpy(payload, (const void *)(uintptr_t)(uint32_t)payload_off, n);
    } else {
        n = 0;
    }
    payload[n] = '\0';
    ocre_messaging_free_module_event_data((uint32_t)topic_off, (uint32_t)ct_off,
                                          (uint32_t)payload_off);
    for (int i = 0; i < n_subs; i++) {
        if (subs[i].fn && strncmp(topic, subs[i].prefix, strlen(subs[i].prefix)) == 0) {
            subs[i].fn(topic, ct, payload, n);
        }
    }
}

void ocre_process_events(void) {
    int got_any = 0;
    for (int i = 0; i < 5; i++) {
        uint32_t type = 0, id = 0, port = 0, state = 0, extra = 0, len = 0;
        int rc = ocre_get_event(&type, &id, &port, &state, &extra, &len);
        if (rc == OCRE_SUCCESS) {
            got_any = 1;
            switch (type) {
            case OCRE_EVENT_TIMER:
                timer_callback((int)id);
                break;
            case OCRE_EVENT_MESSAGE:
                /* id = message id, port = topic, state = content type, extra = payload */
                message_callback((int)id, (int)port, (int)state, (int)extra, (int)len);
                break;
            default:
                break;
            }
        }
        ocre_sleep(10);
        if (rc != OCRE_SUCCESS) {
            break;
        }
    }
    if (!got_any) {
        ocre_sleep(10);
    }
}
