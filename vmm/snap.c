/* The snapshot state stream (vmm/snap.h).  Little-endian throughout: a stream is
 * only ever read back by the plinth that wrote it, but a fixed layout keeps the
 * checks simple. */
#include "vmm/snap.h"
#include "kernel/string.h"

/* Header: magic, version, 4 reserved bytes (0), total length, checksum of the rest. */
#define HDR_MAGIC    0
#define HDR_VERSION  8
#define HDR_RESERVED 12
#define HDR_LENGTH   16
#define HDR_CHECKSUM 24
/* Record: tag (8 bytes, NUL-padded), version, payload length. */
#define RECORD_HEADER 16u

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

uint64_t snap_checksum(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

void snap_fail(struct snap *s, const char *why)
{
    if (!s->failed) {
        s->failed = true;
        s->why = why;
    }
}

bool snap_check(struct snap *s, bool ok, const char *why)
{
    if (!ok)
        snap_fail(s, why);
    return ok;
}

void snap_save_begin(struct snap *s, void *buf, size_t cap)
{
    *s = (struct snap){ .buf = buf, .len = cap, .at = SNAP_HEADER_BYTES, .why = "" };
    if (cap < SNAP_HEADER_BYTES)
        snap_fail(s, "no room for the header");
}

size_t snap_save_end(struct snap *s)
{
    if (s->record_start)
        snap_fail(s, "a record was left open");
    if (s->failed)
        return 0;
    put_le(s->buf + HDR_MAGIC, SNAP_MAGIC, 8);
    put_le(s->buf + HDR_VERSION, SNAP_VERSION, 4);
    put_le(s->buf + HDR_RESERVED, 0, 4);
    put_le(s->buf + HDR_LENGTH, s->at, 8);
    put_le(s->buf + HDR_CHECKSUM, snap_checksum(s->buf + SNAP_HEADER_BYTES, s->at - SNAP_HEADER_BYTES), 8);
    return s->at;
}

size_t snap_stream_length(const void *buf, size_t len)
{
    return len < SNAP_HEADER_BYTES ? 0 : (size_t)get_le((const uint8_t *)buf + HDR_LENGTH, 8);
}

bool snap_load_begin(struct snap *s, const void *buf, size_t len)
{
    *s = (struct snap){ .load = true, .buf = (uint8_t *)buf, .len = len, .at = SNAP_HEADER_BYTES, .why = "" };
    if (len < SNAP_HEADER_BYTES)
        snap_fail(s, "shorter than its header (truncated)");
    else if (get_le(s->buf + HDR_MAGIC, 8) != SNAP_MAGIC)
        snap_fail(s, "not a plinth snapshot (bad magic)");
    else if (get_le(s->buf + HDR_VERSION, 4) != SNAP_VERSION || get_le(s->buf + HDR_RESERVED, 4) != 0)
        snap_fail(s, "written by another version of plinth");
    else if (get_le(s->buf + HDR_LENGTH, 8) != len)
        snap_fail(s, "its length does not match its header (truncated or extended)");
    else if (get_le(s->buf + HDR_CHECKSUM, 8) != snap_checksum(s->buf + SNAP_HEADER_BYTES, len - SNAP_HEADER_BYTES))
        snap_fail(s, "its checksum does not match (altered)");
    return !s->failed;
}

bool snap_load_end(struct snap *s)
{
    if (s->record_start)
        snap_fail(s, "a record was left open");
    else if (!s->failed && s->at != s->len)
        snap_fail(s, "bytes left over after the last record");
    return !s->failed;
}

static void set_where(struct snap *s, const char *tag)
{
    size_t i = 0;
    for (; i < sizeof s->where - 1 && tag[i]; i++)
        s->where[i] = tag[i];
    s->where[i] = 0;
}

bool snap_record_begin(struct snap *s, const char *tag, uint32_t version)
{
    if (s->failed)
        return false;
    if (s->record_start) {
        snap_fail(s, "records do not nest");
        return false;
    }
    set_where(s, tag);
    uint8_t name[8] = { 0 };
    for (size_t i = 0; i < sizeof name - 1 && tag[i]; i++)
        name[i] = (uint8_t)tag[i];
    if (s->len - s->at < RECORD_HEADER) {
        snap_fail(s, s->load ? "a record is missing (truncated)" : "the buffer is too small");
        return false;
    }
    uint8_t *p = s->buf + s->at;
    if (!s->load) {
        memcpy(p, name, sizeof name);
        put_le(p + 8, version, 4);
        put_le(p + 12, 0, 4);            /* the length, once known */
    } else {
        if (memcmp(p, name, sizeof name) != 0) {
            snap_fail(s, "a record is missing or out of order");
            return false;
        }
        if (get_le(p + 8, 4) != version) {
            snap_fail(s, "a record of another version");
            return false;
        }
        s->record_len = (uint32_t)get_le(p + 12, 4);
        if (s->record_len > s->len - s->at - RECORD_HEADER) {
            snap_fail(s, "a record runs past the end (truncated)");
            return false;
        }
    }
    s->at += RECORD_HEADER;
    s->record_start = s->at;
    return true;
}

bool snap_record_end(struct snap *s)
{
    if (!s->record_start) {
        snap_fail(s, "no record is open");
        return false;
    }
    size_t start = s->record_start;
    s->record_start = 0;
    if (s->failed)
        return false;
    size_t n = s->at - start;
    if (!s->load) {
        put_le(s->buf + start - 4, n, 4);
    } else if (n != s->record_len) {
        snap_fail(s, "a record is longer than its model reads");
        return false;
    }
    return true;
}

/* Room for n more bytes: in the buffer (save), in the open record (load). */
static uint8_t *take(struct snap *s, size_t n)
{
    if (s->failed)
        return NULL;
    size_t end = s->load && s->record_start ? s->record_start + s->record_len : s->len;
    if (end - s->at < n) {
        snap_fail(s, s->load ? "a record is shorter than its model reads (truncated)" : "the buffer is too small");
        return NULL;
    }
    uint8_t *p = s->buf + s->at;
    s->at += n;
    return p;
}

static void field(struct snap *s, uint64_t *v, unsigned n)
{
    uint8_t *p = take(s, n);
    if (!p)
        return;
    if (s->load)
        *v = get_le(p, n);
    else
        put_le(p, *v, n);
}

void snap_u8(struct snap *s, uint8_t *v)
{
    uint64_t x = *v;
    field(s, &x, 1);
    *v = (uint8_t)x;
}

void snap_u16(struct snap *s, uint16_t *v)
{
    uint64_t x = *v;
    field(s, &x, 2);
    *v = (uint16_t)x;
}

void snap_u32(struct snap *s, uint32_t *v)
{
    uint64_t x = *v;
    field(s, &x, 4);
    *v = (uint32_t)x;
}

void snap_u64(struct snap *s, uint64_t *v)
{
    field(s, v, 8);
}

void snap_i64(struct snap *s, int64_t *v)
{
    uint64_t x = (uint64_t)*v;
    field(s, &x, 8);
    *v = (int64_t)x;
}

void snap_i8(struct snap *s, int8_t *v)
{
    uint64_t x = (uint8_t)*v;
    field(s, &x, 1);
    *v = (int8_t)(uint8_t)x;
}

void snap_bool(struct snap *s, bool *v)
{
    uint64_t x = *v;
    field(s, &x, 1);
    if (s->failed)
        return;
    if (x > 1)
        snap_fail(s, "a flag is neither 0 nor 1");
    else
        *v = x;
}

void snap_bytes(struct snap *s, void *v, size_t n)
{
    uint8_t *p = take(s, n);
    if (!p)
        return;
    if (s->load)
        memcpy(v, p, n);
    else
        memcpy(p, v, n);
}

void snap_time(struct snap *s, uint64_t *t, uint64_t now)
{
    if (!s->load) {
        /* The sentinels as themselves, any other time as its distance from now;
         * a distance that would read as a sentinel cannot arise from a real time
         * within 2^63 of now. */
        uint64_t rel = *t == 0 || *t == UINT64_MAX ? *t : *t - now;
        uint8_t tag = *t == 0 ? 0 : *t == UINT64_MAX ? 2 : 1;
        snap_u8(s, &tag);
        snap_u64(s, &rel);
        return;
    }
    uint8_t tag = 0;
    uint64_t rel = 0;
    snap_u8(s, &tag);
    snap_u64(s, &rel);
    if (s->failed)
        return;
    if (tag > 2) {
        snap_fail(s, "a time of an unknown kind");
        return;
    }
    if (tag == 0 || tag == 2) {
        *t = tag == 0 ? 0 : UINT64_MAX;
        return;
    }
    /* Clamped at both ends: a time that wrapped past UINT64_MAX would come back as
     * one long gone, and a timer due in the far future would fire at once. */
    if ((int64_t)rel < 0 && 0 - rel >= now)
        *t = 1;
    else if ((int64_t)rel >= 0 && rel > UINT64_MAX - now)
        *t = UINT64_MAX - 1;
    else
        *t = now + rel;
    /* A real time never lands on a sentinel. */
    if (*t == UINT64_MAX)
        *t = UINT64_MAX - 1;
    if (*t == 0)
        *t = 1;
}
