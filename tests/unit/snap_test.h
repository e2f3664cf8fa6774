/* Stream surgery for the device models' snapshot tests: truncating, flipping and
 * re-sealing a stream that vmm/snap.c wrote, so that each test reaches a model's
 * own load checks and not only the header's.  Included after vmm/snap.c and
 * cmocka by a test that compiles one model. */
#ifndef PLINTH_TESTS_UNIT_SNAP_TEST_H
#define PLINTH_TESTS_UNIT_SNAP_TEST_H

#include <stdlib.h>

#define SNAP_TEST_BUF 2048

/* The record header's length field (vmm/snap.c: tag 8, version 4, length 4). */
#define SNAP_TEST_RECORD_LEN_AT (SNAP_HEADER_BYTES + 12)
#define SNAP_TEST_PAYLOAD_AT    (SNAP_HEADER_BYTES + 16)

/* A load with the test's time arguments bound, shaped the same for every model. */
typedef bool (*snap_test_load_fn)(void *model, struct snap *s);

static void snap_test_put32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void snap_test_put64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Rewrites the header's length and checksum for len bytes (len >= the header): a
 * stream that passes snap_load_begin, whatever its records say. */
static void snap_test_reseal(uint8_t *buf, size_t len)
{
    snap_test_put64(buf + 16, len);
    snap_test_put64(buf + 24, snap_checksum(buf + SNAP_HEADER_BYTES, len - SNAP_HEADER_BYTES));
}

/* A model's load of stream must fail, leave the model byte for byte as it was, and
 * (if why is not NULL) say why. */
static void snap_test_refused(const uint8_t *stream, size_t len, snap_test_load_fn load,
                              void *model, size_t size, const char *why)
{
    void *before = malloc(size);
    assert_non_null(before);
    memcpy(before, model, size);
    struct snap s;
    assert_true(snap_load_begin(&s, stream, len));
    assert_false(load(model, &s));
    assert_true(s.failed);
    if (why)
        assert_string_equal(s.why, why);
    assert_memory_equal(model, before, size);
    free(before);
}

/* Every prefix of a good one-record stream is refused: as it is by the header
 * (its length), re-sealed by the model's load (the record cut short), and
 * re-sealed with the record's own length cut to match (the model reads past it). */
static void snap_test_truncations(const uint8_t *stream, size_t len, snap_test_load_fn load,
                                  void *model, size_t size)
{
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    for (size_t k = 0; k < len; k++) {
        struct snap s;
        memcpy(buf, stream, k);
        assert_false(snap_load_begin(&s, buf, k));
        if (k < SNAP_HEADER_BYTES)
            continue;
        snap_test_reseal(buf, k);
        snap_test_refused(buf, k, load, model, size, NULL);
        if (k < SNAP_TEST_PAYLOAD_AT)
            continue;
        snap_test_put32(buf + SNAP_TEST_RECORD_LEN_AT, (uint32_t)(k - SNAP_TEST_PAYLOAD_AT));
        snap_test_reseal(buf, k);
        snap_test_refused(buf, k, load, model, size, "a record is shorter than its model reads (truncated)");
    }
    free(buf);
}

/* Any one byte changed, anywhere, is refused before a model sees it. */
static void snap_test_flips(const uint8_t *stream, size_t len)
{
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    for (size_t i = 0; i < len; i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            struct snap s;
            memcpy(buf, stream, len);
            buf[i] ^= (uint8_t)(1u << bit);
            assert_false(snap_load_begin(&s, buf, len));
        }
    }
    free(buf);
}

/* A record one byte longer than its model reads is refused too. */
static void snap_test_extended(const uint8_t *stream, size_t len, snap_test_load_fn load,
                               void *model, size_t size)
{
    uint8_t *buf = malloc(len + 1);
    assert_non_null(buf);
    memcpy(buf, stream, len);
    buf[len] = 0;
    snap_test_put32(buf + SNAP_TEST_RECORD_LEN_AT, (uint32_t)(len + 1 - SNAP_TEST_PAYLOAD_AT));
    snap_test_reseal(buf, len + 1);
    snap_test_refused(buf, len + 1, load, model, size, "a record is longer than its model reads");
    free(buf);
}

#endif
