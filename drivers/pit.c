#include "drivers/pit.h"
#include "arch/x86_64/cpu/cpu.h"

/* 8254 ports and control words (Intel 8254 datasheet; port 0x61 as on the PC/AT). */
#define PIT_CH2_DATA      0x42
#define PIT_COMMAND       0x43
#define PIT_PORT_B        0x61
#define PORT_B_GATE2      (1u << 0)
#define PORT_B_SPEAKER    (1u << 1)
/* Select counter 2 (bits 7:6 = 10), low then high byte (5:4 = 11), mode 0 (3:1 = 000),
 * binary (0). */
#define PIT_CMD_CH2_MODE0 0xb0
/* Counter latch command for counter 2: bits 7:6 = 10, 5:4 = 00. */
#define PIT_CMD_CH2_LATCH 0x80

/* Reads until the count moves before declaring the PIT absent: on hardware each read
 * takes about a microsecond, so this spans several PIT periods many times over. */
#define PIT_PROBE_READS   100000u

static uint16_t pit_ch2_count(void)
{
    outb(PIT_COMMAND, PIT_CMD_CH2_LATCH);
    uint8_t lo = inb(PIT_CH2_DATA);
    uint8_t hi = inb(PIT_CH2_DATA);
    return (uint16_t)(((uint16_t)hi << 8) | lo);
}

bool pit_ch2_start(void)
{
    /* Gate low while programming: in mode 0 counting starts with the gate high. */
    uint8_t b = inb(PIT_PORT_B);
    outb(PIT_PORT_B, (uint8_t)(b & ~(PORT_B_GATE2 | PORT_B_SPEAKER)));
    outb(PIT_COMMAND, PIT_CMD_CH2_MODE0);
    outb(PIT_CH2_DATA, 0xff);
    outb(PIT_CH2_DATA, 0xff);
    outb(PIT_PORT_B, (uint8_t)((b & ~PORT_B_SPEAKER) | PORT_B_GATE2));

    uint16_t first = pit_ch2_count();
    for (uint32_t i = 0; i < PIT_PROBE_READS; i++) {
        uint16_t now = pit_ch2_count();
        /* A floating bus reads 0xffff for ever; a live counter leaves it at once. */
        if (now != first && now != 0xffff)
            return true;
    }
    pit_ch2_stop();
    return false;
}

uint16_t pit_ch2_elapsed(void)
{
    return (uint16_t)(0xffffu - pit_ch2_count());
}

void pit_ch2_stop(void)
{
    uint8_t b = inb(PIT_PORT_B);
    outb(PIT_PORT_B, (uint8_t)(b & ~(PORT_B_GATE2 | PORT_B_SPEAKER)));
}
