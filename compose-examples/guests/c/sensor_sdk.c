/*
 * Reads sensors the way Ocre SDK programs do: init, discover, then for every discovered
 * sensor get its handle, open it, ask each channel's type and read by that type; then the
 * same by name for each sensor named on the command line. Last, three reads that must fail
 * print the error code they got (negated errno values; never NaN).
 *
 * Output, one line per read (ROUNDS reads per channel):
 *   sensor_sdk: by id ID handle H channel C type T value V int I
 *   sensor_sdk: by name "NAME" handle H channel C type T value V int I
 *   sensor_sdk: wrong type 4242 -> E
 * "int I" is the value as an SDK program's double-to-int sees it.
 */
#include <stdio.h>

#include "ocre_abi.h"

#define ROUNDS 5
#define WRONG_TYPE 4242

static void print_read(const char *how, int handle, int channel, int type, double v) {
    printf("sensor_sdk: %s handle %d channel %d type %d value %.6f int %d\n", how, handle,
           channel, type, v, (int)v);
}

/* Every channel of the sensor with discovery index `id`, read by type. */
static int by_id(int id) {
    int handle = ocre_sensors_get_handle(id);
    if (handle < 0) {
        printf("sensor_sdk: get_handle(%d) failed: %d\n", id, handle);
        return 1;
    }
    int rc = ocre_sensors_open(handle);
    if (rc != OCRE_SUCCESS) {
        printf("sensor_sdk: open(%d) failed: %d\n", handle, rc);
        return 1;
    }
    int channels = ocre_sensors_get_channel_count(handle);
    if (channels < 1) {
        printf("sensor_sdk: get_channel_count(%d) failed: %d\n", handle, channels);
        return 1;
    }
    char how[32];
    snprintf(how, sizeof how, "by id %d", id);
    for (int c = 0; c < channels; c++) {
        int type = ocre_sensors_get_channel_type(handle, c);
        if (type < 0) {
            printf("sensor_sdk: get_channel_type(%d, %d) failed: %d\n", handle, c, type);
            return 1;
        }
        for (int r = 0; r < ROUNDS; r++) {
            print_read(how, handle, c, type, ocre_sensors_read(handle, type));
            ocre_sleep(1);
        }
    }
    return 0;
}

/* Every channel of the sensor called `name`, read by type through the _by_name forms. */
static int by_name(const char *name) {
    int rc = ocre_sensors_open_by_name(name);
    if (rc != OCRE_SUCCESS) {
        printf("sensor_sdk: open_by_name(\"%s\") failed: %d\n", name, rc);
        return 1;
    }
    int handle = ocre_sensors_get_handle_by_name(name);
    int channels = ocre_sensors_get_channel_count_by_name(name);
    if (handle < 0 || channels < 1) {
        printf("sensor_sdk: \"%s\": handle %d, %d channels\n", name, handle, channels);
        return 1;
    }
    char how[160];
    snprintf(how, sizeof how, "by name \"%s\"", name);
    for (int c = 0; c < channels; c++) {
        int type = ocre_sensors_get_channel_type_by_name(name, c);
        if (type < 0) {
            printf("sensor_sdk: get_channel_type_by_name(\"%s\", %d) failed: %d\n", name, c, type);
            return 1;
        }
        for (int r = 0; r < ROUNDS; r++) {
            print_read(how, handle, c, type, ocre_sensors_read_by_name(name, type));
            ocre_sleep(1);
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (ocre_sensors_init() != OCRE_SUCCESS) {
        printf("Failed to initialize sensors\n");
        return 1;
    }
    int count = ocre_sensors_discover();
    if (count < 0) {
        printf("Failed to discover sensors\n");
        return 1;
    }
    printf("sensor_sdk: discovered %d sensors\n", count);
    for (int id = 0; id < count; id++) {
        if (by_id(id) != 0) {
            return 1;
        }
    }
    for (int i = 1; i < argc; i++) {
        if (by_name(argv[i]) != 0) {
            return 1;
        }
    }
    printf("sensor_sdk: wrong type %d -> %d\n", WRONG_TYPE, (int)ocre_sensors_read(0, WRONG_TYPE));
    printf("sensor_sdk: wrong handle %d -> %d\n", count, (int)ocre_sensors_read(count, 0));
    printf("sensor_sdk: wrong name -> %d\n", (int)ocre_sensors_read_by_name("no such sensor", 0));
    printf("sensor_sdk: wrong channel index -> %d\n", ocre_sensors_get_channel_type(0, 99));
    printf("sensor_sdk: done\n");
    return 0;
}
