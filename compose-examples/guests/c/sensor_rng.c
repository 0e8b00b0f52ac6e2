/* Opens the declared "RNG Sensor" and prints a reading every second. */
#include <stdio.h>

#include "events.h"
#include "ocre_abi.h"

#define SENSOR_NAME "RNG Sensor"
#define TIMER_ID 1

static int reading;

static void on_tick(int id) {
    (void)id;
    double v = ocre_sensors_read_by_name(SENSOR_NAME, 0);
    if (v != v) { /* NaN: read failed */
        printf("Failed to read sensor %s\n", SENSOR_NAME);
        return;
    }
    printf("Sensor %s reading %d: %.2f\n", SENSOR_NAME, reading++, v);
}

int main(void) {
    if (ocre_sensors_init() != OCRE_SUCCESS) {
        printf("Failed to initialize sensors\n");
        return 1;
    }
    int count = ocre_sensors_discover();
    if (count < 0) {
        printf("Failed to discover sensors\n");
        return 1;
    }
    if (ocre_sensors_open_by_name(SENSOR_NAME) != OCRE_SUCCESS) {
        printf("Failed to open sensor %s\n", SENSOR_NAME);
        return 1;
    }
    int channels = ocre_sensors_get_channel_count_by_name(SENSOR_NAME);
    if (channels < 1) {
        printf("Failed to get channel count for %s\n", SENSOR_NAME);
        return 1;
    }
    if (ocre_register_timer_callback(TIMER_ID, on_tick) != OCRE_SUCCESS) {
        printf("Failed to register timer callback\n");
        return 1;
    }
    if (ocre_timer_create(TIMER_ID) != OCRE_SUCCESS) {
        printf("Failed to create timer\n");
        return 1;
    }
    if (ocre_timer_start(TIMER_ID, 1000, 1) != OCRE_SUCCESS) {
        printf("Failed to start timer\n");
        return 1;
    }
    printf("Sensor initialized: %s (%d sensors found, %d channels), reading every 1s\n",
           SENSOR_NAME, count, channels);
    for (;;) {
        ocre_process_events();
    }
}
