/* Subscribe to a prefix and register its handler; prints the failure line and returns 1. */
#include <stdio.h>

#include "events.h"
#include "ocre_abi.h"

static int subscriber_setup(const char *prefix, message_handler_t handler) {
    if (ocre_register_message_callback(prefix, handler) != OCRE_SUCCESS) {
        printf("Failed to register message callback\n");
        return 1;
    }
    if (ocre_subscribe_message(prefix) != OCRE_SUCCESS) {
        printf("Failed to subscribe to %s\n", prefix);
        return 1;
    }
    return 0;
}
