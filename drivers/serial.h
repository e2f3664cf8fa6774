/* The host's 16550 serial line: plinth's log and the guests' consoles. */
#ifndef PLINTH_DRIVERS_SERIAL_H
#define PLINTH_DRIVERS_SERIAL_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

#define SERIAL_COM1 0x3f8

/* Programs 115200 8N1 with FIFOs; returns false when no UART answers at port. */
bool serial_init(uint16_t port);
uint16_t serial_port(void);
void serial_write(const char *s, size_t n);
/* -1 when no byte is waiting. */
int  serial_getc(void);

#endif
