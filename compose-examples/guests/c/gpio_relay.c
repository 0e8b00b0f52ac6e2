/*
 * gpio_relay.c - a button switches a relay, written as Ocre SDK programs are: init,
 * configure, register a GPIO callback, then an event loop that calls ocre_get_event up to
 * 5 times with ocre_sleep(10) after each call (the SDK's ocre_process_events).
 *
 * The container is granted two lines (compose file `gpio: [button, relay]`), which the SDK
 * reaches as port 0, pin 0 (button) and port 0, pin 1 (relay). Before it waits, the
 * program checks its own relay (set, read back, toggle) and shows that a pin it was not
 * granted is refused. Each button edge sets the relay to the button's state.
 *
 * Argument: the number of button edges to handle before exiting 0 (default: run forever).
 */
#include <stdio.h>
#include <stdlib.h>

#include "ocre_abi.h"
#include "ocre_gpio.h"

#define PORT 0
#define BUTTON_PIN 0
#define RELAY_PIN 1
#define NOT_GRANTED_PIN 7

static int edges_left = -1;
static int handled;

static void say(const char *line) {
    fputs(line, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

/* Exported as the SDK's event code does; the loop below calls it for GPIO events. */
__attribute__((export_name("gpio_callback"))) void gpio_callback(int pin, int state, int port) {
    char line[96];
    if (port != PORT || pin != BUTTON_PIN) {
        return;
    }
    int rc = ocre_gpio_pin_set(PORT, RELAY_PIN, state);
    int relay = ocre_gpio_pin_get(PORT, RELAY_PIN);
    snprintf(line, sizeof line, "button -> %d, relay -> %d (rc %d)", state, relay, rc);
    say(line);
    handled++;
    /* Exit from here: after an empty poll the loop's ocre_sleep parks until the next
     * event, so a check after ocre_process_events would wait for one more edge. */
    if (edges_left >= 0 && handled >= edges_left) {
        ocre_gpio_unregister_callback_by_name("button");
        say("done");
        exit(0);
    }
}

static void process_events(void) {
    int got_any = 0;
    for (int i = 0; i < 5; i++) {
        uint32_t type = 0, id = 0, port = 0, state = 0, extra = 0, len = 0;
        int rc = ocre_get_event(&type, &id, &port, &state, &extra, &len);
        if (rc == OCRE_SUCCESS) {
            got_any = 1;
            if (type == OCRE_EVENT_GPIO) {
                gpio_callback((int)id, (int)state, (int)port);
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

static int self_test(void) {
    char line[96];
    int set = ocre_gpio_pin_set(PORT, RELAY_PIN, OCRE_GPIO_PIN_SET);
    int got = ocre_gpio_pin_get(PORT, RELAY_PIN);
    int toggled = ocre_gpio_pin_toggle(PORT, RELAY_PIN);
    int after = ocre_gpio_get_by_name("relay");
    snprintf(line, sizeof line, "relay: set %d, read back %d, toggle %d, now %d", set, got, toggled,
             after);
    say(line);
    int denied = ocre_gpio_pin_set(PORT, NOT_GRANTED_PIN, OCRE_GPIO_PIN_SET);
    snprintf(line, sizeof line, "pin %d (not granted): %d", NOT_GRANTED_PIN, denied);
    say(line);
    return set == 0 && got == 1 && toggled == 0 && after == 0 && denied < 0;
}

int main(int argc, char **argv) {
    if (argc > 1) {
        edges_left = atoi(argv[1]);
    }
    if (ocre_gpio_init() != OCRE_SUCCESS ||
        ocre_gpio_configure(PORT, RELAY_PIN, OCRE_GPIO_DIR_OUTPUT) != OCRE_SUCCESS ||
        ocre_gpio_configure_by_name("button", OCRE_GPIO_DIR_INPUT) != OCRE_SUCCESS) {
        say("GPIO setup failed");
        return 1;
    }
    if (!self_test()) {
        say("relay self-test failed");
        return 1;
    }
    if (ocre_register_dispatcher(OCRE_EVENT_GPIO, "gpio_callback") != OCRE_SUCCESS ||
        ocre_gpio_register_callback(PORT, BUTTON_PIN) != OCRE_SUCCESS) {
        say("cannot register the button callback");
        return 1;
    }
    say("waiting for button edges");
    for (;;) {
        process_events();
    }
}
