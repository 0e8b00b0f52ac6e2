/* Plain WASI C program: a banner and a greeting. Imports only wasi_snapshot_preview1. */
#include <stdio.h>

int main(void) {
    printf("  _   _ _____ _     _     ___\n");
    printf(" | | | | ____| |   | |   / _ \\\n");
    printf(" | |_| |  _| | |   | |  | | | |\n");
    printf(" |  _  | |___| |___| |__| |_| |\n");
    printf(" |_| |_|_____|_____|_____\\___/\n");
    printf(" ~^~^~^~^~^~^~^~^~^~^~^~^~^~^~\n");
    printf("Hello from a shoal C container!\n");
    return 0;
}
