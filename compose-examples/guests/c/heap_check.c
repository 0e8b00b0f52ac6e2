/*
 * Checks that the host's message copies never overlap the guest's malloc heap.
 * Subscribes heap/ and makes its first malloc only after the first message arrived (the
 * worst case for the 2022 wasi-libc, whose first malloc adopts all memory up to
 * memory.size). For each message: allocate an 8 KiB block filled with a pattern (keeping up
 * to 32 blocks), check no block overlaps the host's topic/content-type/payload copies and
 * every block still holds its pattern. Prints "heap ok N" per message, or
 * "HEAP OVERLAP ..." / "HEAP CORRUPTED ..." and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocre_abi.h"

#define BLOCK 8192
#define MAX_BLOCKS 32

static unsigned char *blocks[MAX_BLOCKS];
static int n_blocks;

/* Named by ocre_register_dispatcher; events are polled, so these do nothing. */
__attribute__((export_name("timer_callback"))) void timer_callback(int id) { (void)id; }
__attribute__((export_name("message_callback"))) void message_callback(int id, int t, int c,
                                                                       int p, int l) {
    (void)id;
    (void)t;
    (void)c;
    (void)p;
    (void)l;
}

static int overlaps(const unsigned char *b, uint32_t off, uint32_t len) {
    uintptr_t lo = (uintptr_t)b, hi = lo + BLOCK;
    return off != 0 && off < hi && off + len > lo;
}

int main(void) {
    if (ocre_register_dispatcher(OCRE_EVENT_MESSAGE, "message_callback") != OCRE_SUCCESS) {
        printf("Failed to register message callback\n");
        return 1;
    }
    if (ocre_subscribe_message("heap/") != OCRE_SUCCESS) {
        printf("Failed to subscribe to heap/\n");
        return 1;
    }
    printf("heap_check: listening on heap/\n");
    for (unsigned n = 0;; n++) {
        uint32_t type, id, topic, ct, payload, len;
        while (ocre_get_event(&type, &id, &topic, &ct, &payload, &len) != OCRE_SUCCESS) {
            ocre_sleep(10);
        }
        if (type != OCRE_EVENT_MESSAGE) {
            continue;
        }
        uint32_t tlen = (uint32_t)strlen((const char *)(uintptr_t)topic) + 1;
        uint32_t clen = (uint32_t)strlen((const char *)(uintptr_t)ct) + 1;
        if (n_blocks < MAX_BLOCKS) {
            unsigned char *b = malloc(BLOCK);
            if (b == NULL) {
                printf("HEAP malloc failed\n");
                return 1;
            }
            memset(b, n_blocks & 0xff, BLOCK);
            blocks[n_blocks++] = b;
        }
        for (int i = 0; i < n_blocks; i++) {
            if (overlaps(blocks[i], topic, tlen) || overlaps(blocks[i], ct, clen) ||
                overlaps(blocks[i], payload, len + 1)) {
                printf("HEAP OVERLAP block %d at %lu..%lu with host copies topic=%u ct=%u "
                       "payload=%u\n",
                       i, (unsigned long)(uintptr_t)blocks[i],
                       (unsigned long)(uintptr_t)blocks[i] + BLOCK, topic, ct, payload);
                return 1;
            }
            for (int k = 0; k < BLOCK; k++) {
                if (blocks[i][k] != (unsigned char)(i & 0xff)) {
                    printf("HEAP CORRUPTED block %d byte %d\n", i, k);
                    return 1;
                }
            }
        }
        ocre_messaging_free_module_event_data(topic, ct, payload);
        printf("heap ok %u\n", n);
    }
}
