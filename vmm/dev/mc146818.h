/* The PC's MC146818 real-time clock and CMOS RAM as a guest sees it at ports 0x70
 * (index; bit 7 masks NMI) and 0x71 (data): a plain state machine with no clock of
 * its own.  The caller provides wall-clock time through a callback; the guest's
 * time is that plus an offset the guest changes by setting the clock.  Interrupt
 * flags are brought up to date lazily, on every access and on mc146818_tick(); to
 * deliver interrupts on time the monitor arms a timer for mc146818_next_event_ns()
 * and calls mc146818_tick() when it fires.
 *
 * Not modelled: daylight-saving adjustment (DSE is stored, the clock never jumps),
 * the square-wave output pin (SQWE is stored), crystal time bases other than
 * 32.768 kHz (any divider other than 010 stops the clock), the second 128-byte
 * bank some chipsets decode at 0x72/0x73.  The weekday register is derived from
 * the date (a weekday the guest writes does not stick), and the century byte
 * advances with the year, as the clock's own register. */
#ifndef PLINTH_VMM_DEV_MC146818_H
#define PLINTH_VMM_DEV_MC146818_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/snap.h"

#define MC146818_PORT_INDEX 0x70
#define MC146818_PORT_DATA  0x71
#define MC146818_CMOS_SIZE  128

/* CMOS offsets a PC BIOS defines and guests read (IBM PC/AT Technical Reference,
 * "CMOS RAM address map"); the century byte is the one ACPI's FADT CENTURY field
 * names (ACPI 6.5 §5.2.9). */
#define MC146818_CMOS_EQUIPMENT      0x14
#define MC146818_CMOS_BASE_MEM_LO    0x15
#define MC146818_CMOS_BASE_MEM_HI    0x16
#define MC146818_CMOS_EXT_MEM_LO     0x17
#define MC146818_CMOS_EXT_MEM_HI     0x18
#define MC146818_CMOS_CHECKSUM_HI    0x2e
#define MC146818_CMOS_CHECKSUM_LO    0x2f
#define MC146818_CMOS_EXT_MEM_POST_LO 0x30
#define MC146818_CMOS_EXT_MEM_POST_HI 0x31
#define MC146818_CMOS_CENTURY        0x32
#define MC146818_CMOS_MEM_16M_LO     0x34
#define MC146818_CMOS_MEM_16M_HI     0x35

/* mc146818_next_event_ns() when nothing is due. */
#define MC146818_NO_EVENT UINT64_MAX

/* Wall-clock time now (UTC): seconds since 1970-01-01 and nanoseconds (< 1e9). */
typedef void (*mc146818_now_fn)(void *ctx, uint64_t *sec, uint32_t *nsec);
typedef void (*mc146818_irq_fn)(void *ctx, bool level);

struct mc146818 {
    uint8_t cmos[MC146818_CMOS_SIZE]; /* time bytes here only while the clock is stopped */
    uint8_t index;
    bool    nmi_masked;
    uint8_t flags;          /* register C's PF/AF/UF, set whether or not enabled */
    bool    irq_level;
    bool    running;        /* the time registers advance (divider on, SET clear, valid date) */
    /* guest time = host time + offset; seconds counted from 0000-01-01 (proleptic
     * Gregorian) so that every date the registers can hold is positive. */
    int64_t  offset_sec;
    uint32_t offset_nsec;
    uint64_t last_sec;      /* host time of the last catch-up */
    uint32_t last_nsec;
    mc146818_now_fn now;
    mc146818_irq_fn irq;
    void           *ctx;
};

/* Power-on state: the guest clock equals the host clock, 24-hour BCD mode, the
 * periodic rate 1024 Hz (register A 0x26) as a PC BIOS leaves it, CMOS RAM zero
 * apart from the equipment byte. */
void    mc146818_init(struct mc146818 *r, mc146818_now_fn now, mc146818_irq_fn irq, void *ctx);
/* The RESET pin, as a system reset drives it: interrupt enables and flags clear,
 * the time and CMOS RAM (battery-backed) survive. */
void    mc146818_reset(struct mc146818 *r);
/* One byte-wide access at MC146818_PORT_INDEX or MC146818_PORT_DATA (other ports
 * read 0xff and ignore writes). */
uint8_t mc146818_read(struct mc146818 *r, uint16_t port);
void    mc146818_write(struct mc146818 *r, uint16_t port, uint8_t value);
/* Brings the flags and the interrupt line up to date (the monitor's timer fired). */
void    mc146818_tick(struct mc146818 *r);
/* Catches up as mc146818_tick() does, then the nanoseconds from now until an enabled
 * interrupt next raises the line, or MC146818_NO_EVENT (nothing enabled, or the line
 * already high until the guest reads register C).  Ask again after every access. */
uint64_t mc146818_next_event_ns(struct mc146818 *r);
/* NMI mask as the guest last wrote it with an index (bit 7 of port 0x70). */
bool    mc146818_nmi_masked(const struct mc146818 *r);
/* The BIOS memory-size bytes (0x15-0x18, 0x30-0x31, 0x34-0x35) for ram_bytes of RAM
 * contiguous from address 0, and the standard checksum over 0x10-0x2d. */
void    mc146818_set_memory(struct mc146818 *r, uint64_t ram_bytes);
/* Plain CMOS bytes for the monitor to preset (not the clock registers 0x00-0x0d or
 * the century byte: false for those and for an index past the RAM). */
bool    mc146818_cmos_set(struct mc146818 *r, unsigned index, uint8_t value);

/* Snapshot record "rtc" (vmm/snap.h): CMOS RAM (with the frozen time bytes), the
 * index and NMI mask, register C's flags, whether the clock runs, irq_level (the
 * level the line is driven to), and the guest's time.  The callbacks stay the
 * live model's and neither is called: the caller drives the line to irq_level.
 *
 * now_sec, now_nsec: host wall-clock time at the save, and at the load, in the
 * now callback's form (UTC seconds since 1970, nanoseconds).  The guest's clock
 * is host time plus an offset, so the record keeps not the offset but what the
 * guest's clock read at the save, and the last catch-up as a distance before it;
 * a load sets the offset so that the guest's clock reads at now_sec/now_nsec
 * what it read at the save, and puts the last catch-up as far before that.  The
 * time between save and load did not happen for the guest: no update, alarm or
 * periodic flag for it, and the guest's clock runs that much behind the host's
 * from then on.
 *
 * A refused load (an index past the CMOS RAM, flags other than PF/AF/UF, UIP
 * stored, the clock running while the divider is off or SET is on, a time or
 * distance out of any calendar's range, nanoseconds past a second) leaves *r as
 * it was. */
bool    mc146818_save(const struct mc146818 *r, struct snap *s, uint64_t now_sec, uint32_t now_nsec);
bool    mc146818_load(struct mc146818 *r, struct snap *s, uint64_t now_sec, uint32_t now_nsec);

#endif
