/* Article experiment 2: subscribes temperature/ and prints each message. */
#include "subscriber_common.h"

static void on_message(const char *topic, const char *ct, const void *payload, uint32_t len) {
    (void)ct;
    (void)len;
    printf("Received message: topic=%s, payload=%s\n", topic, (const char *)payload);
}

int main(void) {
    if (subscriber_setup("temperature/", on_message) != 0) {
        return 1;
    }
    printf("Subscriber initialized: listening on temperature/\n");
    for (;;) {
        ocre_process_events();
    }
}
