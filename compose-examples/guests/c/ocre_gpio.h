/*
 * ocre_gpio.h - the GPIO `env` imports as the Ocre SDK's ocre_api.h declares them: the
 * (port, pin) forms and the *_by_name forms, each returning 0 (or a pin state) on success
 * and a negated errno on failure. shoal maps (port, pin) to the lines the compose file
 * grants the container (see the README's GPIO section).
 */
#ifndef SHOAL_OCRE_GPIO_H
#define SHOAL_OCRE_GPIO_H

#define OCRE_GPIO_DIR_INPUT 0
#define OCRE_GPIO_DIR_OUTPUT 1
#define OCRE_GPIO_PIN_RESET 0
#define OCRE_GPIO_PIN_SET 1

#define OCRE_GPIO_IMPORT(name) __attribute__((import_module("env"), import_name(#name)))

OCRE_GPIO_IMPORT(ocre_gpio_init) int ocre_gpio_init(void);
OCRE_GPIO_IMPORT(ocre_gpio_configure) int ocre_gpio_configure(int port, int pin, int direction);
OCRE_GPIO_IMPORT(ocre_gpio_pin_set) int ocre_gpio_pin_set(int port, int pin, int state);
OCRE_GPIO_IMPORT(ocre_gpio_pin_get) int ocre_gpio_pin_get(int port, int pin);
OCRE_GPIO_IMPORT(ocre_gpio_pin_toggle) int ocre_gpio_pin_toggle(int port, int pin);
OCRE_GPIO_IMPORT(ocre_gpio_register_callback) int ocre_gpio_register_callback(int port, int pin);
OCRE_GPIO_IMPORT(ocre_gpio_unregister_callback)
int ocre_gpio_unregister_callback(int port, int pin);
OCRE_GPIO_IMPORT(ocre_gpio_configure_by_name)
int ocre_gpio_configure_by_name(const char *name, int direction);
OCRE_GPIO_IMPORT(ocre_gpio_set_by_name) int ocre_gpio_set_by_name(const char *name, int state);
OCRE_GPIO_IMPORT(ocre_gpio_get_by_name) int ocre_gpio_get_by_name(const char *name);
OCRE_GPIO_IMPORT(ocre_gpio_toggle_by_name) int ocre_gpio_toggle_by_name(const char *name);
OCRE_GPIO_IMPORT(ocre_gpio_register_callback_by_name)
int ocre_gpio_register_callback_by_name(const char *name);
OCRE_GPIO_IMPORT(ocre_gpio_unregister_callback_by_name)
int ocre_gpio_unregister_callback_by_name(const char *name);

#endif
