/* Article experiment 2: publishes "Temperature outside N" to temperature/outside every 4 s. */
#include "publisher_common.h"

int main(void) {
    if (publisher_setup("temperature/outside", "Temperature outside", 4000) != 0) {
        return 1;
    }
    printf("Publisher initialized: publishing to temperature/outside (4s interval)\n");
    for (;;) {
        ocre_process_events();
    }
}
