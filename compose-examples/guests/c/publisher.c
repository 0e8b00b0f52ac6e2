/* Article experiment 1: publishes "Test message N" to test/topic every 2 s. */
#include "publisher_common.h"

int main(void) {
    if (publisher_setup("test/topic", "Test message", 2000) != 0) {
        return 1;
    }
    printf("Publisher initialized: timer 1 started, publishing to test/topic\n");
    for (;;) {
        ocre_process_events();
    }
}
