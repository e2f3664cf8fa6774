/* The snapshot state stream (vmm/snap.c): its layout, the header's and records'
 * refusals, fields that run out, bools, times relative to now and their clamps,
 * and a save that does not fit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/snap.c"
#include "snap_test.h"

struct sample {
    uint8_t  a;
    uint16_t b;
    uint32_t c;
    uint64_t d;
    int64_t  e;
    int8_t   f;
    bool     g;
    uint8_t  h[5];
    uint64_t t;
};

static const struct sample sample = {
    .a = 0x11, .b = 0x2233, .c = 0x44556677, .d = 0x8899aabbccddeeffull, .e = -2, .f = -3,
    .g = true, .h = { 1, 2, 3, 4, 5 }, .t = 1500,
};

static void sample_fields(struct snap *s, struct sample *x, uint64_t now)
{
    snap_u8(s, &x->a);
    snap_u16(s, &x->b);
    snap_u32(s, &x->c);
    snap_u64(s, &x->d);
    snap_i64(s, &x->e);
    snap_i8(s, &x->f);
    snap_bool(s, &x->g);
    snap_bytes(s, x->h, sizeof x->h);
    snap_time(s, &x->t, now);
}

/* Payload: 1 + 2 + 4 + 8 + 8 + 1 + 1 + 5 + (1 + 8). */
#define SAMPLE_PAYLOAD 39u
#define SAMPLE_STREAM  (SNAP_HEADER_BYTES + 16 + SAMPLE_PAYLOAD)

static size_t write_sample(uint8_t *buf, size_t cap, const char *tag, uint32_t version, uint64_t now)
{
    struct snap s;
    struct sample x = sample;
    snap_save_begin(&s, buf, cap);
    snap_record_begin(&s, tag, version);
    sample_fields(&s, &x, now);
    snap_record_end(&s);
    return snap_save_end(&s);
}

/* Reads the sample record back into *x; false, with s->why, if refused. */
static bool read_sample(const uint8_t *buf, size_t len, struct sample *x, uint64_t now, struct snap *s)
{
    if (!snap_load_begin(s, buf, len))
        return false;
    snap_record_begin(s, "sample", 1);
    sample_fields(s, x, now);
    snap_record_end(s);
    return snap_load_end(s);
}

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void test_layout_and_round_trip(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = write_sample(buf, sizeof buf, "sample", 1, 1000);
    assert_int_equal(n, SAMPLE_STREAM);
    assert_memory_equal(buf, "PLNTSNP1", 8);
    assert_int_equal(le(buf + 8, 4), SNAP_VERSION);
    assert_int_equal(le(buf + 12, 4), 0);
    assert_int_equal(le(buf + 16, 8), n);
    assert_int_equal(le(buf + 24, 8), snap_checksum(buf + 32, n - 32));
    assert_memory_equal(buf + 32, "sample\0\0", 8);
    assert_int_equal(le(buf + 40, 4), 1);
    assert_int_equal(le(buf + 44, 4), SAMPLE_PAYLOAD);
    const uint8_t *p = buf + 48;
    assert_int_equal(p[0], 0x11);
    assert_int_equal(le(p + 1, 2), 0x2233);
    assert_int_equal(le(p + 3, 4), 0x44556677);
    assert_int_equal(le(p + 7, 8), 0x8899aabbccddeeffull);
    assert_int_equal(le(p + 15, 8), (uint64_t)-2);
    assert_int_equal(p[23], 0xfd);
    assert_int_equal(p[24], 1);
    assert_memory_equal(p + 25, sample.h, 5);
    assert_int_equal(p[30], 1);                        /* a time, not a sentinel */
    assert_int_equal(le(p + 31, 8), 500);              /* 1500 at now = 1000 */

    struct snap s;
    struct sample x;
    memset(&x, 0, sizeof x);
    assert_true(read_sample(buf, n, &x, 1000, &s));
    assert_memory_equal(&x, &sample, sizeof x);
    assert_string_equal(s.why, "");
}

static void test_checksum_is_fnv1a(void **state)
{
    (void)state;
    assert_int_equal(snap_checksum("", 0), 0xcbf29ce484222325ull);
    assert_int_equal(snap_checksum("a", 1), 0xaf63dc4c8601ec8cull);
    assert_int_equal(snap_checksum("foobar", 6), 0x85944171f73967e8ull);
}

/* Refused before any field was read. */
static void refused_as(const uint8_t *buf, size_t len, const char *why)
{
    struct snap s;
    struct sample x, zero;
    memset(&x, 0, sizeof x);
    memset(&zero, 0, sizeof zero);
    assert_false(read_sample(buf, len, &x, 1000, &s));
    assert_true(s.failed);
    assert_string_equal(s.why, why);
    assert_memory_equal(&x, &zero, sizeof x);
}

static void test_header_refusals(void **state)
{
    (void)state;
    uint8_t good[256], buf[257];
    size_t n = write_sample(good, sizeof good, "sample", 1, 1000);

    for (size_t k = 0; k < SNAP_HEADER_BYTES; k++)
        refused_as(good, k, "shorter than its header (truncated)");
    memcpy(buf, good, n);
    buf[7] = '2';
    refused_as(buf, n, "not a plinth snapshot (bad magic)");
    memcpy(buf, good, n);
    buf[8] = 2;
    refused_as(buf, n, "written by another version of plinth");
    memcpy(buf, good, n);
    buf[15] = 1;
    refused_as(buf, n, "written by another version of plinth");
    refused_as(good, n - 1, "its length does not match its header (truncated or extended)");
    memcpy(buf, good, n);
    buf[n] = 0;
    refused_as(buf, n + 1, "its length does not match its header (truncated or extended)");
    memcpy(buf, good, n);
    buf[24] ^= 0x80;
    refused_as(buf, n, "its checksum does not match (altered)");
    memcpy(buf, good, n);
    buf[n - 1] ^= 0x01;
    refused_as(buf, n, "its checksum does not match (altered)");
    snap_test_flips(good, n);
}

static void test_record_tag_version_and_bounds(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = write_sample(buf, sizeof buf, "other", 1, 1000);
    refused_as(buf, n, "a record is missing or out of order");
    n = write_sample(buf, sizeof buf, "sampl", 1, 1000);
    refused_as(buf, n, "a record is missing or out of order");
    n = write_sample(buf, sizeof buf, "sample", 2, 1000);
    refused_as(buf, n, "a record of another version");

    /* Tags are kept to 7 characters, on both sides. */
    n = write_sample(buf, sizeof buf, "samplers", 1, 1000);
    assert_memory_equal(buf + 32, "sampler\0", 8);

    /* No record at all, a record header cut short, a length past the end. */
    n = write_sample(buf, sizeof buf, "sample", 1, 1000);
    for (size_t k = SNAP_HEADER_BYTES; k < SNAP_HEADER_BYTES + 16; k++) {
        snap_test_reseal(buf, k);
        refused_as(buf, k, "a record is missing (truncated)");
    }
    n = write_sample(buf, sizeof buf, "sample", 1, 1000);
    snap_test_put32(buf + SNAP_TEST_RECORD_LEN_AT, SAMPLE_PAYLOAD + 1);
    snap_test_reseal(buf, n);
    refused_as(buf, n, "a record runs past the end (truncated)");
    snap_test_put32(buf + SNAP_TEST_RECORD_LEN_AT, UINT32_MAX);
    snap_test_reseal(buf, n);
    refused_as(buf, n, "a record runs past the end (truncated)");
}

/* The model reads more than the record holds, or less. */
static void test_record_too_short_or_long(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct snap s;
    snap_save_begin(&s, buf, sizeof buf);
    snap_record_begin(&s, "sample", 1);
    uint32_t v = 7;
    snap_u32(&s, &v);
    snap_record_end(&s);
    size_t n = snap_save_end(&s);

    assert_true(snap_load_begin(&s, buf, n));
    snap_record_begin(&s, "sample", 1);
    uint32_t got = 0;
    uint8_t extra = 0x5a;
    snap_u32(&s, &got);
    snap_u8(&s, &extra);
    assert_false(snap_record_end(&s));
    assert_string_equal(s.why, "a record is shorter than its model reads (truncated)");
    assert_string_equal(s.where, "sample");
    assert_int_equal(got, 7);
    assert_int_equal(extra, 0x5a);                     /* left alone once it ran out */

    assert_true(snap_load_begin(&s, buf, n));
    snap_record_begin(&s, "sample", 1);
    uint16_t half = 0;
    snap_u16(&s, &half);
    assert_false(snap_record_end(&s));
    assert_string_equal(s.why, "a record is longer than its model reads");
    assert_false(snap_load_end(&s));
}

static void test_leftover_bytes(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct snap s;
    struct sample x = sample;
    snap_save_begin(&s, buf, sizeof buf);
    snap_record_begin(&s, "sample", 1);
    sample_fields(&s, &x, 0);
    snap_record_end(&s);
    snap_record_begin(&s, "more", 1);
    snap_record_end(&s);
    size_t n = snap_save_end(&s);
    assert_int_equal(n, SAMPLE_STREAM + 16);
    memset(&x, 0, sizeof x);
    assert_false(read_sample(buf, n, &x, 0, &s));
    assert_string_equal(s.why, "bytes left over after the last record");
}

static void test_nesting_and_open_records(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct snap s;
    snap_save_begin(&s, buf, sizeof buf);
    assert_true(snap_record_begin(&s, "outer", 1));
    assert_false(snap_record_begin(&s, "inner", 1));
    assert_string_equal(s.why, "records do not nest");

    snap_save_begin(&s, buf, sizeof buf);
    assert_true(snap_record_begin(&s, "open", 1));
    assert_int_equal(snap_save_end(&s), 0);
    assert_string_equal(s.why, "a record was left open");

    snap_save_begin(&s, buf, sizeof buf);
    assert_false(snap_record_end(&s));
    assert_string_equal(s.why, "no record is open");

    size_t n = write_sample(buf, sizeof buf, "sample", 1, 0);
    assert_true(snap_load_begin(&s, buf, n));
    assert_true(snap_record_begin(&s, "sample", 1));
    assert_false(snap_load_end(&s));
    assert_string_equal(s.why, "a record was left open");
}

static void test_bool_refuses_other_values(void **state)
{
    (void)state;
    for (unsigned value = 0; value < 256; value++) {
        uint8_t buf[256];
        struct snap s;
        snap_save_begin(&s, buf, sizeof buf);
        snap_record_begin(&s, "flag", 1);
        uint8_t raw = (uint8_t)value;
        snap_u8(&s, &raw);
        snap_record_end(&s);
        size_t n = snap_save_end(&s);

        assert_true(snap_load_begin(&s, buf, n));
        snap_record_begin(&s, "flag", 1);
        bool flag = true;
        snap_bool(&s, &flag);
        snap_record_end(&s);
        if (value <= 1) {
            assert_true(snap_load_end(&s));
            assert_int_equal(flag, value);
        } else {
            assert_false(snap_load_end(&s));
            assert_string_equal(s.why, "a flag is neither 0 nor 1");
            assert_true(flag);                         /* untouched */
        }
    }
}

/* A time saved at save_now, loaded at load_now. */
static uint64_t time_trip(uint64_t t, uint64_t save_now, uint64_t load_now)
{
    uint8_t buf[256];
    struct snap s;
    snap_save_begin(&s, buf, sizeof buf);
    snap_record_begin(&s, "time", 1);
    snap_time(&s, &t, save_now);
    snap_record_end(&s);
    size_t n = snap_save_end(&s);
    assert_true(n > 0);
    uint64_t back = 0x5a5a;
    assert_true(snap_load_begin(&s, buf, n));
    snap_record_begin(&s, "time", 1);
    snap_time(&s, &back, load_now);
    snap_record_end(&s);
    assert_true(snap_load_end(&s));
    return back;
}

static void test_time_relative_to_now(void **state)
{
    (void)state;
    /* "Never" and "not set" stay what they are, whatever the two nows. */
    static const uint64_t nows[] = { 0, 1, 1000, 1ull << 62, UINT64_MAX - 1, UINT64_MAX };
    for (unsigned i = 0; i < 6; i++) {
        for (unsigned j = 0; j < 6; j++) {
            assert_int_equal(time_trip(0, nows[i], nows[j]), 0);
            assert_int_equal(time_trip(UINT64_MAX, nows[i], nows[j]), UINT64_MAX);
        }
    }
    /* Future and past times keep their distance from now. */
    assert_int_equal(time_trip(1500, 1000, 1000), 1500);
    assert_int_equal(time_trip(1500, 1000, 9000), 9500);
    assert_int_equal(time_trip(400, 1000, 9000), 8400);
    assert_int_equal(time_trip(1000, 1000, 9000), 9000);
    assert_int_equal(time_trip(9500, 10000, 600), 100);  /* a load at an earlier now */
    assert_int_equal(time_trip(UINT64_MAX - 5, UINT64_MAX - 10, 100), 105);
    /* One that would fall before 0, or on it, comes back as 1. */
    assert_int_equal(time_trip(400, 1000, 500), 1);
    assert_int_equal(time_trip(500, 1000, 500), 1);
    assert_int_equal(time_trip(1, 1ull << 62, 0), 1);
    /* One that would run past the clock's end stops short of "not set". */
    assert_int_equal(time_trip(2000, 1000, UINT64_MAX - 1000), UINT64_MAX - 1);
    assert_int_equal(time_trip(2000, 1000, UINT64_MAX - 5000), UINT64_MAX - 4000);
    assert_int_equal(time_trip((1ull << 62) + 10, 10, UINT64_MAX - 3), UINT64_MAX - 1);
}

static void test_time_of_unknown_kind(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct snap s;
    uint64_t t = 77;
    snap_save_begin(&s, buf, sizeof buf);
    snap_record_begin(&s, "time", 1);
    snap_time(&s, &t, 7);
    snap_record_end(&s);
    size_t n = snap_save_end(&s);
    buf[SNAP_TEST_PAYLOAD_AT] = 3;
    snap_test_reseal(buf, n);
    assert_true(snap_load_begin(&s, buf, n));
    snap_record_begin(&s, "time", 1);
    uint64_t back = 5;
    snap_time(&s, &back, 7);
    assert_false(snap_record_end(&s));
    assert_string_equal(s.why, "a time of an unknown kind");
    assert_int_equal(back, 5);
}

static void test_save_buffer_too_small(void **state)
{
    (void)state;
    uint8_t buf[256];
    for (size_t cap = 0; cap < SAMPLE_STREAM; cap++) {
        struct snap s;
        struct sample x = sample;
        memset(buf, 0xee, sizeof buf);
        snap_save_begin(&s, buf, cap);
        snap_record_begin(&s, "sample", 1);
        sample_fields(&s, &x, 1000);
        snap_record_end(&s);
        assert_int_equal(snap_save_end(&s), 0);
        assert_string_equal(s.why, cap < SNAP_HEADER_BYTES ? "no room for the header" : "the buffer is too small");
        for (size_t i = cap; i < sizeof buf; i++)
            assert_int_equal(buf[i], 0xee);            /* nothing past the buffer */
    }
    assert_int_equal(write_sample(buf, SAMPLE_STREAM, "sample", 1, 1000), SAMPLE_STREAM);
}

static void test_first_reason_kept(void **state)
{
    (void)state;
    uint8_t buf[64];
    struct snap s;
    snap_save_begin(&s, buf, sizeof buf);
    assert_true(snap_check(&s, true, "not this"));
    assert_false(s.failed);
    assert_false(snap_check(&s, false, "the first"));
    assert_false(snap_check(&s, false, "the second"));
    snap_fail(&s, "the third");
    assert_string_equal(s.why, "the first");
    /* A failed stream writes nothing more and opens no record. */
    assert_false(snap_record_begin(&s, "late", 1));
    uint64_t v = 9;
    snap_u64(&s, &v);
    assert_int_equal(s.at, SNAP_HEADER_BYTES);
    assert_int_equal(snap_save_end(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_and_round_trip),
        cmocka_unit_test(test_checksum_is_fnv1a),
        cmocka_unit_test(test_header_refusals),
        cmocka_unit_test(test_record_tag_version_and_bounds),
        cmocka_unit_test(test_record_too_short_or_long),
        cmocka_unit_test(test_leftover_bytes),
        cmocka_unit_test(test_nesting_and_open_records),
        cmocka_unit_test(test_bool_refuses_other_values),
        cmocka_unit_test(test_time_relative_to_now),
        cmocka_unit_test(test_time_of_unknown_kind),
        cmocka_unit_test(test_save_buffer_too_small),
        cmocka_unit_test(test_first_reason_kept),
    };
    return cmocka_run_group_tests_name("snap", tests, NULL, NULL);
}
