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
/* Takes up to max bytes that have arrived, without waiting: what the console VM's
 * UART receives (plinth itself reads no input).  0 when none, or no UART.  Safe
 * from any CPU: readers are serialised, so no byte goes to two of them. */
size_t serial_read(char *buf, size_t max);

#endif
