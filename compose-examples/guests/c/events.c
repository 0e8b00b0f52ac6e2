/* events.c - see events.h. */
#include <string.h>

#include "events.h"
#include "ocre_abi.h"

/* The host's GPIO subscription; declared here so that only guests which register a GPIO
 * callback import it (the linker drops it, and the import, from every other guest). */
__attribute__((import_module("env"), import_name("ocre_gpio_register_callback"))) int
events_gpio_register_callback(int port, int pin);

#define MAX_TIMERS 8
#define MAX_SUBS 8
#define MAX_GPIO 8
/* Events one ocre_process_events() call takes at most, as in the SDK. */
#define EVENTS_PER_CALL 5
#define POLL_SLEEP_MS 10

static struct {
    int id;
    timer_handler_t fn;
} timers[MAX_TIMERS];
static int n_timers;

static struct {
    char prefix[OCRE_MAX_TOPIC_LEN];
    message_handler_t fn;
} subs[MAX_SUBS];
static int n_subs;

static struct {
    int pin;
    int port;
    gpio_handler_t fn;
} gpios[MAX_GPIO];
static int n_gpios;

static int timer_dispatcher_registered;
static int message_dispatcher_registered;
static int gpio_dispatcher_registered;

/* Registers the dispatcher export `name` for `type` once per program. */
static int need_dispatcher(int *done, int type, const char *name) {
    if (*done) {
        return OCRE_SUCCESS;
    }
    int rc = ocre_register_dispatcher(type, name);
    if (rc == OCRE_SUCCESS) {
        *done = 1;
    }
    return rc;
}

int ocre_register_timer_callback(int id, timer_handler_t handler) {
    int rc = need_dispatcher(&timer_dispatcher_registered, OCRE_EVENT_TIMER, "timer_callback");
    if (rc != OCRE_SUCCESS) {
        return rc;
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
    if (prefix == NULL || prefix[0] == '\0' || strlen(prefix) >= OCRE_MAX_TOPIC_LEN) {
        return -22; /* EINVAL */
    }
    int rc = need_dispatcher(&message_dispatcher_registered, OCRE_EVENT_MESSAGE,
                             "message_callback");
    if (rc != OCRE_SUCCESS) {
        return rc;
    }
    for (int i = 0; i < n_subs; i++) {
        if (strcmp(subs[i].prefix, prefix) == 0) {
            subs[i].fn = handler;
            return OCRE_SUCCESS;
        }
    }
    if (n_subs == MAX_SUBS) {
        return -12;
    }
    strcpy(subs[n_subs].prefix, prefix);
    subs[n_subs].fn = handler;
    n_subs++;
    return OCRE_SUCCESS;
}

int ocre_register_gpio_callback(int pin, int port, gpio_handler_t handler) {
    int rc = need_dispatcher(&gpio_dispatcher_registered, OCRE_EVENT_GPIO, "gpio_callback");
    if (rc != OCRE_SUCCESS) {
        return rc;
    }
    int slot = -1;
    for (int i = 0; i < n_gpios; i++) {
        if (gpios[i].pin == pin && gpios[i].port == port) {
            slot = i;
        }
    }
    if (slot < 0) {
        if (n_gpios == MAX_GPIO) {
            return -12;
        }
        slot = n_gpios++;
    }
    gpios[slot].pin = pin;
    gpios[slot].port = port;
    gpios[slot].fn = handler;
    return events_gpio_register_callback(port, pin);
}

/* Exported (named by ocre_register_dispatcher), as SDK programs export it. */
__attribute__((export_name("timer_callback"))) void timer_callback(int id) {
    for (int i = 0; i < n_timers; i++) {
        if (timers[i].id == id && timers[i].fn) {
            timers[i].fn(id);
            return;
        }
    }
}

/* Exported, as SDK programs export it. */
__attribute__((export_name("gpio_callback"))) void gpio_callback(int pin, int state, int port) {
    for (int i = 0; i < n_gpios; i++) {
        if (gpios[i].pin == pin && gpios[i].port == port && gpios[i].fn) {
            gpios[i].fn(pin, port, state);
            return;
        }
    }
}

/* Exported, as SDK programs export it: the pointers are the loop's stack copies. Goes to
 * the first handler whose prefix starts the topic. */
__attribute__((export_name("message_callback"))) void
message_callback(int id, const char *topic, const char *ct, const void *payload, uint32_t len) {
    (void)id;
    for (int i = 0; i < n_subs; i++) {
        size_t n = strlen(subs[i].prefix);
        if (subs[i].fn && strncmp(topic, subs[i].prefix, n) == 0) {
            subs[i].fn(topic, ct, payload, len);
            return;
        }
    }
}

/* Copies a NUL-terminated host string at guest offset `src` into `dst` (cap bytes). */
static void copy_str(char *dst, size_t cap, uint32_t src) {
    if (src == 0) {
        dst[0] = '\0';
        return;
    }
    strncpy(dst, (const char *)(uintptr_t)src, cap - 1);
    dst[cap - 1] = '\0';
}

/* The loop's copies of one message, on its stack as in the SDK. */
struct message_copy {
    char topic[OCRE_MAX_TOPIC_LEN];
    char ct[OCRE_MAX_CONTENT_TYPE_LEN];
    /* One byte more than the SDK's so that a text payload shorter than 1,024 bytes ends in
     * a NUL and the sample programs can print it. */
    char payload[OCRE_MAX_PAYLOAD_LEN + 1];
};

/* A message event: copy the host's data to the loop's stack, free it, dispatch. */
static void take_message(struct message_copy *copy, uint32_t id, uint32_t topic_off,
                         uint32_t ct_off, uint32_t payload_off, uint32_t len) {
    char *topic = copy->topic;
    char *ct = copy->ct;
    char *payload = copy->payload;
    uint32_t n = len > OCRE_MAX_PAYLOAD_LEN ? OCRE_MAX_PAYLOAD_LEN : len;
    copy_str(topic, sizeof copy->topic, topic_off);
    copy_str(ct, sizeof copy->ct, ct_off);
    if (payload_off == 0) {
        n = 0;
    }
    if (n > 0) {
        memcpy(payload, (const void *)(uintptr_t)payload_off, n);
    }
    payload[n] = '\0';
    ocre_messaging_free_module_event_data(topic_off, ct_off, payload_off);
    message_callback((int)id, topic, ct, payload, n);
}

void ocre_process_events(void) {
    struct message_copy copy;
    int taken = 0;
    while (taken < EVENTS_PER_CALL) {
        uint32_t type = 0, id = 0, port = 0, state = 0, extra = 0, len = 0;
        int rc = ocre_get_event(&type, &id, &port, &state, &extra, &len);
        ocre_sleep(POLL_SLEEP_MS);
        if (rc != OCRE_SUCCESS) {
            break;
        }
        switch (type) {
        case OCRE_EVENT_TIMER:
            timer_callback((int)id);
            break;
        case OCRE_EVENT_GPIO:
            /* id = pin, port = port, state = the line's new value */
            gpio_callback((int)id, (int)state, (int)port);
            break;
        case OCRE_EVENT_MESSAGE:
            /* id = message id, port = topic, state = content type, extra = payload */
            take_message(&copy, id, port, state, extra, len);
            break;
        default:
            break;
        }
        taken++;
    }
    if (taken == 0) {
        ocre_sleep(POLL_SLEEP_MS);
    }
}
