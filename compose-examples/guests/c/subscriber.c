/* Article experiment 1: subscribes test/ and prints each message. */
#include "subscriber_common.h"

static void on_message(const char *topic, const char *ct, const void *payload, uint32_t len) {
    (void)len;
    printf("Received message: topic=%s, content_type=%s, payload=%s\n", topic, ct,
           (const char *)payload);
}

int main(void) {
    if (subscriber_setup("test/", on_message) != 0) {
        return 1;
    }
    printf("Subscriber initialized: listening on test/\n");
    for (;;) {
        ocre_process_events();
    }
}
