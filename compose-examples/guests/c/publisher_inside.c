/* Article experiment 2: publishes "Temperature inside N" to temperature/inside every 2 s. */
#include "publisher_common.h"

int main(void) {
    if (publisher_setup("temperature/inside", "Temperature inside", 2000) != 0) {
        return 1;
    }
    printf("Publisher initialized: publishing to temperature/inside (2s interval)\n");
    for (;;) {
        ocre_process_events();
    }
}
