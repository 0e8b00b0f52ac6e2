/* Ends with a status outside WASI's [0..126): with no argument `main` returns -1 (a shell
 * shows 255); with an argument it calls exit() with that number (e.g. 200). A second
 * argument is printed first, as it is (terminal escapes included: shoal must show them, not
 * obey them). */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc > 2) {
        fputs(argv[2], stdout);
        fputs("\n", stdout);
    }
    if (argc > 1) {
        exit(atoi(argv[1]));
    }
    return -1;
}
