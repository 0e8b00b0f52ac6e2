/* Density benchmark guest: subscribes bench/ and waits in the poll loop forever, silently. */
#include "events.h"
#include "ocre_abi.h"

static void on_message(const char *topic, const char *ct, const void *payload, uint32_t len) {
    (void)topic;
    (void)ct;
    (void)payload;
    (void)len;
}

int main(void) {
    if (ocre_register_message_callback("bench/", on_message) != OCRE_SUCCESS ||
        ocre_subscribe_message("bench/") != OCRE_SUCCESS) {
        return 1;
    }
    for (;;) {
        ocre_process_events();
    }
}
