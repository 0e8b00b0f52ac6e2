/* A timer-driven publisher, shared by publisher.c, publisher_inside.c, publisher_outside.c. */
#include <stdio.h>
#include <string.h>

#include "events.h"
#include "ocre_abi.h"

#define PUB_TIMER_ID 1

static const char *pub_topic;
static const char *pub_text;
static int pub_count;

static void publish_tick(int id) {
    char payload[64];
    (void)id;
    snprintf(payload, sizeof payload, "%s %d", pub_text, pub_count);
    /* Printed before the call so the line precedes the subscriber's on a fast host. */
    printf("Published: %s to topic %s\n", payload, pub_topic);
    if (ocre_publish_message(pub_topic, "text/plain", payload, (int)strlen(payload)) !=
        OCRE_SUCCESS) {
        printf("Failed to publish message to topic %s\n", pub_topic);
    }
    pub_count++;
}

/* Sets up timer 1 and returns 0, or prints the article's failure line and returns 1. */
static int publisher_setup(const char *topic, const char *text, int interval_ms) {
    pub_topic = topic;
    pub_text = text;
    if (ocre_register_timer_callback(PUB_TIMER_ID, publish_tick) != OCRE_SUCCESS) {
        printf("Failed to register timer callback\n");
        return 1;
    }
    if (ocre_timer_create(PUB_TIMER_ID) != OCRE_SUCCESS) {
        printf("Failed to create timer\n");
        return 1;
    }
    if (ocre_timer_start(PUB_TIMER_ID, interval_ms, 1) != OCRE_SUCCESS) {
        printf("Failed to start timer\n");
        return 1;
    }
    return 0;
}
