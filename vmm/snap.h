/* The byte stream of a VM snapshot's state (devices, vCPUs, the monitor's own), and
 * its reader.  Each model lists its fields once, in one function that both saves and
 * loads (snap_u8 .. snap_time), and keeps a *_save / *_load pair beside it: a
 * record tagged with the model's name, a version and a size, so that a load takes
 * exactly what the save wrote, or refuses it.
 *
 * A stream opens with a header (magic, version, length, checksum): a truncated or
 * altered one is refused before any model looks at it.  Loads go into a copy of the
 * model, which replaces the model only once the copy passed the model's own checks;
 * a refused load leaves the model as it was.
 *
 * Times are kept relative to the moment of the save (snap.now: ns, or a model's own
 * ticks) and come back relative to the load's: a restored VM's timers go on from
 * the snapshot, as if the time between had not happened. */
#ifndef PLINTH_VMM_SNAP_H
#define PLINTH_VMM_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_MAGIC   0x31504e53544e4c50ull   /* "PLNTSNP1" */
#define SNAP_VERSION 1u
#define SNAP_HEADER_BYTES 32u

struct snap {
    bool        load;          /* false: writing buf; true: reading it */
    uint8_t    *buf;
    size_t      len;           /* capacity (save) or the stream's length (load) */
    size_t      at;
    size_t      record_start;  /* where the open record's payload starts (0: none) */
    uint32_t    record_len;    /* load: the open record's payload length */
    bool        failed;
    const char *why;           /* the first problem, for one log line */
    char        where[8];      /* the record it was found in */
};

/* A stream written into buf (cap bytes), the header's place kept. */
void snap_save_begin(struct snap *s, void *buf, size_t cap);
/* Writes the header: the stream's length (0 if it failed: the buffer was too small). */
size_t snap_save_end(struct snap *s);
/* The length a stream's header gives (0 if len is shorter than a header): where a
 * state that holds more than the stream has the rest. */
size_t snap_stream_length(const void *buf, size_t len);
/* A stream read from buf: false (s->why says why) unless its header, length and
 * checksum are right. */
bool snap_load_begin(struct snap *s, const void *buf, size_t len);
/* After the last record: false if bytes were left over, or anything failed. */
bool snap_load_end(struct snap *s);

/* A record: tag (up to 7 characters) and version; on load both must match, and the
 * record must lie inside the stream.  snap_record_end checks that the load took
 * exactly the record's payload.  Both return !s->failed. */
bool snap_record_begin(struct snap *s, const char *tag, uint32_t version);
bool snap_record_end(struct snap *s);

/* Fields, in the order the model lists them.  On load they fill *v (a copy's), or
 * mark the stream failed (and leave *v alone) once it runs out. */
void snap_u8(struct snap *s, uint8_t *v);
void snap_u16(struct snap *s, uint16_t *v);
void snap_u32(struct snap *s, uint32_t *v);
void snap_u64(struct snap *s, uint64_t *v);
void snap_i64(struct snap *s, int64_t *v);
void snap_i8(struct snap *s, int8_t *v);
/* A bool: a load of anything but 0 or 1 fails. */
void snap_bool(struct snap *s, bool *v);
void snap_bytes(struct snap *s, void *v, size_t n);
/* A point in time, kept as its distance from now (the time of the save, then of
 * the load, in the same unit).  0 and UINT64_MAX stay as they are ("never", "not
 * set"); a loaded time that would lie before 0 comes back as 1, one past the
 * largest as UINT64_MAX - 1. */
void snap_time(struct snap *s, uint64_t *t, uint64_t now);
/* Marks the stream failed with why (the first reason is kept). */
void snap_fail(struct snap *s, const char *why);
/* For a model's load check: fails with why unless ok; returns ok. */
bool snap_check(struct snap *s, bool ok, const char *why);

/* FNV-1a, 64 bits: the stream's checksum. */
uint64_t snap_checksum(const void *p, size_t n);

#endif
