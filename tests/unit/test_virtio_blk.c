/* The virtio-blk request engine (vmm/virtio/blk.c) over the real virtqueue engine
 * and a fake guest RAM whose rings the test lays out itself: reads, writes in RW
 * and SNAPSHOT mode (copy-on-write, pool exhaustion), and every malformed request
 * a hostile driver can make, each of which must complete with its own status while
 * the device keeps working. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/virtio/guest_mem.c"
#include "vmm/virtio/virtqueue.c"
#include "vmm/virtio/blk.c"

#define RAM_SIZE  (1u << 20)
#define QSIZE     32
#define DESC      0x1000ull
#define AVAIL     0x2000ull
#define USED      0x3000ull
#define HDR(k)    (0x4000ull + 32 * (k))
#define STATUS(k) (0x5000ull + (k))
#define DATA      0x10000ull

/* 16 KiB + 3 sectors + 100 bytes: the last 4 KiB block is partial and so is the
 * last sector (unreachable). */
#define IMG_BYTES (4 * 4096 + 3 * 512 + 100)
#define IMG_SECTORS (IMG_BYTES / 512)
#define POOL_BLOCKS 8

static uint8_t *ram;
static struct gmem g;
static struct vq q;
static struct vblk_disk disk;
static uint8_t image[IMG_BYTES];
static uint8_t pristine[IMG_BYTES];
static uint8_t pool[POOL_BLOCKS * 4096];
static uint32_t cow_index[VBLK_COW_INDEX_ENTRIES(IMG_BYTES)];
static uint16_t drv_avail;
static unsigned next_desc;      /* descriptors used since the last process() */
static unsigned nreq;           /* requests made (header/status slot) */

/* ---- the fake guest ---------------------------------------------------------- */

static void wr16(uint64_t gpa, uint16_t v) { memcpy(ram + gpa, &v, 2); }
static void wr32(uint64_t gpa, uint32_t v) { memcpy(ram + gpa, &v, 4); }
static void wr64(uint64_t gpa, uint64_t v) { memcpy(ram + gpa, &v, 8); }
static uint16_t rd16(uint64_t gpa) { uint16_t v; memcpy(&v, ram + gpa, 2); return v; }
static uint32_t rd32(uint64_t gpa) { uint32_t v; memcpy(&v, ram + gpa, 4); return v; }

struct buf {
    uint64_t gpa;
    uint32_t len;
    bool write;
};

/* Lays out a chain of n buffers and makes it available; returns its head. */
static uint16_t offer_chain(const struct buf *b, unsigned n)
{
    uint16_t head = (uint16_t)next_desc;
    for (unsigned i = 0; i < n; i++) {
        uint64_t at = DESC + 16ull * next_desc;
        uint16_t flags = (uint16_t)((b[i].write ? VIRTQ_DESC_F_WRITE : 0) |
                                    (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
        wr64(at, b[i].gpa);
        wr32(at + 8, b[i].len);
        wr16(at + 12, flags);
        wr16(at + 14, (uint16_t)(next_desc + 1));
        next_desc++;
    }
    assert_true(next_desc <= QSIZE);
    wr16(AVAIL + 4 + 2 * (drv_avail % QSIZE), head);
    drv_avail++;
    wr16(AVAIL + 2, drv_avail);
    return head;
}

static void put_hdr(unsigned k, uint32_t type, uint64_t sector)
{
    wr32(HDR(k), type);
    wr32(HDR(k) + 4, 0);
    wr64(HDR(k) + 8, sector);
    ram[STATUS(k)] = 0xee;              /* not a status value: must be overwritten */
}

/* The usual Linux layout: header, one data buffer (dir 0 none, 'r' device-readable,
 * 'w' device-writable), status.  Returns the request's slot. */
static unsigned submit(uint32_t type, uint64_t sector, uint64_t data, uint32_t len, char dir)
{
    unsigned k = nreq++;
    put_hdr(k, type, sector);
    struct buf b[3];
    unsigned n = 0;
    b[n++] = (struct buf){ HDR(k), 16, false };
    if (dir)
        b[n++] = (struct buf){ data, len, dir == 'w' };
    b[n++] = (struct buf){ STATUS(k), 1, true };
    offer_chain(b, n);
    return k;
}

/* Runs the device; the queue must have drained without breaking. */
static bool process(void)
{
    enum vq_error e = VQ_OK;
    bool notify = vblk_process(&disk, &q, &g, &e);
    assert_int_equal(e, VQ_EMPTY);
    assert_false(q.broken);
    next_desc = 0;
    return notify;
}

/* The i-th used element (since the queue started). */
static uint32_t used_len(unsigned i) { return rd32(USED + 4 + 8 * (i % QSIZE) + 4); }
static uint32_t used_id(unsigned i) { return rd32(USED + 4 + 8 * (i % QSIZE)); }

static void fill(uint64_t gpa, uint8_t v, size_t n) { memset(ram + gpa, v, n); }

/* ---- fixtures ------------------------------------------------------------------ */

static void fresh_queue(void)
{
    memset(ram, 0, RAM_SIZE);
    drv_avail = 0;
    next_desc = 0;
    nreq = 0;
    vq_init(&q, 0);
    vq_set_features(&q, 0);
    assert_int_equal(vq_set_addrs(&q, &g, QSIZE, DESC, AVAIL, USED), VQ_OK);
    for (size_t i = 0; i < IMG_BYTES; i++)
        pristine[i] = (uint8_t)(i * 7 + (i >> 9) * 13 + 1);
    memcpy(image, pristine, IMG_BYTES);
}

static int setup(void **state)
{
    (void)state;
    ram = calloc(1, RAM_SIZE);
    assert_non_null(ram);
    gmem_init(&g, ram, RAM_SIZE);
    fresh_queue();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ram);
    return 0;
}

static void use_ro(void) { vblk_init_ro(&disk, image, IMG_BYTES, "plinth-vda"); }
static void use_rw(void)
{
    vblk_init_rw(&disk, image, IMG_BYTES, "plinth-vda");
    vblk_set_features(&disk, vblk_features(&disk));
}
static void use_snapshot(uint64_t pool_blocks)
{
    assert_true(vblk_init_snapshot(&disk, image, IMG_BYTES, pool, pool_blocks, cow_index,
                                   sizeof cow_index / sizeof cow_index[0], "plinth-vda"));
    vblk_set_features(&disk, vblk_features(&disk));
}

/* Reads n sectors at sector into DATA through the device; returns the status. */
static uint8_t read_back(uint64_t sector, uint32_t n)
{
    fill(DATA, 0xcc, n * 512);
    unsigned k = submit(VIRTIO_BLK_T_IN, sector, DATA, n * 512, 'w');
    process();
    return ram[STATUS(k)];
}

/* ---- features and config ---------------------------------------------------------- */

static void test_features_config(void **state)
{
    (void)state;
    use_ro();
    uint64_t f = vblk_features(&disk);
    assert_true(f & 1ull << VIRTIO_BLK_F_RO);
    assert_true(f & 1ull << VIRTIO_BLK_F_SEG_MAX);
    assert_true(f & 1ull << VIRTIO_BLK_F_BLK_SIZE);
    assert_true(f & 1ull << VIRTIO_BLK_F_FLUSH);
    assert_true(f & 1ull << VIRTIO_F_VERSION_1);
    assert_false(f & 1ull << VIRTIO_BLK_F_DISCARD);

    uint8_t c[VBLK_CONFIG_BYTES + 8];
    memset(c, 0xff, sizeof c);
    assert_int_equal(vblk_config(&disk, 256, c, sizeof c), VBLK_CONFIG_BYTES);
    uint64_t cap;
    uint32_t v;
    memcpy(&cap, c + 0, 8);
    assert_int_equal(cap, IMG_SECTORS);                 /* partial sector dropped */
    memcpy(&v, c + 12, 4);
    assert_int_equal(v, VBLK_SEG_MAX);
    memcpy(&v, c + 20, 4);
    assert_int_equal(v, 512);
    assert_int_equal(c[VBLK_CONFIG_BYTES], 0xff);       /* nothing past the struct */
    /* seg_max + header + status fit a small queue. */
    vblk_config(&disk, 16, c, sizeof c);
    memcpy(&v, c + 12, 4);
    assert_int_equal(v, 14);
    /* A short buffer gets only its bytes. */
    memset(c, 0xff, sizeof c);
    assert_int_equal(vblk_config(&disk, 256, c, 4), 4);
    assert_int_equal(c[4], 0xff);

    use_snapshot(POOL_BLOCKS);
    f = vblk_features(&disk);
    assert_false(f & 1ull << VIRTIO_BLK_F_RO);
    assert_true(f & 1ull << VIRTIO_BLK_F_DISCARD);
    vblk_config(&disk, 256, c, sizeof c);
    memcpy(&v, c + 36, 4);
    assert_int_equal(v, VBLK_MAX_DISCARD_SECTORS);
    memcpy(&v, c + 40, 4);
    assert_int_equal(v, VBLK_MAX_DISCARD_SEG);
    memcpy(&v, c + 44, 4);
    assert_int_equal(v, 8);

    /* An index too small for the image is refused. */
    assert_false(vblk_init_snapshot(&disk, image, IMG_BYTES, pool, POOL_BLOCKS, cow_index,
                                    VBLK_COW_INDEX_ENTRIES(IMG_BYTES) - 1, NULL));
}

/* ---- reads --------------------------------------------------------------------- */

static void test_read_sectors(void **state)
{
    (void)state;
    use_ro();
    /* Header split 10 + 6, data split 700 + 324: framing is the driver's (§2.7.4). */
    unsigned k = nreq++;
    put_hdr(k, VIRTIO_BLK_T_IN, 3);
    fill(DATA, 0xcc, 2048);
    struct buf b[] = {
        { HDR(k), 10, false }, { HDR(k) + 10, 6, false },
        { DATA, 700, true }, { DATA + 1024, 324, true },
        { STATUS(k), 1, true },
    };
    offer_chain(b, 5);
    assert_true(process());
    assert_int_equal(ram[STATUS(k)], VIRTIO_BLK_S_OK);
    assert_memory_equal(ram + DATA, pristine + 3 * 512, 700);
    assert_memory_equal(ram + DATA + 1024, pristine + 3 * 512 + 700, 324);
    assert_int_equal(ram[DATA + 700], 0xcc);            /* the gap is untouched */
    assert_int_equal(used_id(0), 0);
    assert_int_equal(used_len(0), 1024 + 1);
    assert_int_equal(rd16(USED + 2), 1);
    assert_int_equal(disk.stats.reads, 1);
    assert_int_equal(disk.stats.bytes_read, 1024);

    /* The last whole sector is readable. */
    assert_int_equal(read_back(IMG_SECTORS - 1, 1), VIRTIO_BLK_S_OK);
    assert_memory_equal(ram + DATA, pristine + (IMG_SECTORS - 1) * 512, 512);
    assert_int_equal(used_len(1), 513);
}

/* ---- writes ------------------------------------------------------------------ */

static void test_write_rw(void **state)
{
    (void)state;
    use_rw();
    for (unsigned i = 0; i < 1024; i++)
        ram[DATA + i] = (uint8_t)(0x5a ^ i);
    unsigned k = submit(VIRTIO_BLK_T_OUT, 7, DATA, 1024, 'r');
    assert_true(process());
    assert_int_equal(ram[STATUS(k)], VIRTIO_BLK_S_OK);
    assert_int_equal(used_len(0), 1);                   /* only the status written */
    assert_memory_equal(image + 7 * 512, ram + DATA, 1024);
    assert_memory_equal(image, pristine, 7 * 512);      /* neighbours untouched */
    assert_memory_equal(image + 9 * 512, pristine + 9 * 512, IMG_BYTES - 9 * 512);
    assert_int_equal(disk.stats.writes, 1);
    assert_int_equal(disk.stats.bytes_written, 1024);

    uint8_t expect[1024];
    memcpy(expect, ram + DATA, 1024);
    assert_int_equal(read_back(7, 2), VIRTIO_BLK_S_OK);
    assert_memory_equal(ram + DATA, expect, 1024);
}

static void test_write_snapshot(void **state)
{
    (void)state;
    use_snapshot(POOL_BLOCKS);
    memset(pool, 0xab, sizeof pool);    /* stale bytes must not leak into a copy */
    /* Sectors 6..9: the end of 4 KiB block 0 and the start of block 1. */
    for (unsigned i = 0; i < 2048; i++)
        ram[DATA + i] = (uint8_t)(0xa5 ^ (i * 3));
    uint8_t w1[2048];
    memcpy(w1, ram + DATA, 2048);
    unsigned k = submit(VIRTIO_BLK_T_OUT, 6, DATA, 2048, 'r');
    /* And the last whole sector, in the partial last block. */
    fill(DATA + 0x1000, 0x77, 512);
    unsigned k2 = submit(VIRTIO_BLK_T_OUT, IMG_SECTORS - 1, DATA + 0x1000, 512, 'r');
    process();
    assert_int_equal(ram[STATUS(k)], VIRTIO_BLK_S_OK);
    assert_int_equal(ram[STATUS(k2)], VIRTIO_BLK_S_OK);
    assert_memory_equal(image, pristine, IMG_BYTES);    /* image unchanged */
    assert_int_equal(disk.cow_bumped, 3);
    /* The partial last block's copy: image bytes, then zeros, not pool garbage. */
    const uint8_t *last = pool + 4096ull * (cow_index[4] - 1);
    assert_memory_equal(last, pristine + 4 * 4096, 2 * 512);          /* before sector 35 */
    assert_memory_equal(last + 3 * 512, pristine + 4 * 4096 + 3 * 512, 100); /* partial sector */
    for (unsigned i = IMG_BYTES - 4 * 4096; i < 4096; i++)
        assert_int_equal(last[i], 0);

    /* Reads see the writes, and the image around them within the copied blocks. */
    assert_int_equal(read_back(0, 12), VIRTIO_BLK_S_OK);
    assert_memory_equal(ram + DATA, pristine, 6 * 512);
    assert_memory_equal(ram + DATA + 6 * 512, w1, 2048);
    assert_memory_equal(ram + DATA + 10 * 512, pristine + 10 * 512, 2 * 512);
    assert_int_equal(read_back(IMG_SECTORS - 3, 3), VIRTIO_BLK_S_OK);
    assert_memory_equal(ram + DATA, pristine + (IMG_SECTORS - 3) * 512, 1024);
    for (unsigned i = 0; i < 512; i++)
        assert_int_equal(ram[DATA + 1024 + i], 0x77);

    /* A restart makes the disk pristine again. */
    vblk_snapshot_reset(&disk);
    assert_int_equal(read_back(6, 4), VIRTIO_BLK_S_OK);
    assert_memory_equal(ram + DATA, pristine + 6 * 512, 2048);
}

static uint8_t write_sectors(uint64_t sector, uint32_t n, uint8_t v)
{
    fill(DATA, v, n * 512);
    unsigned k = submit(VIRTIO_BLK_T_OUT, sector, DATA, n * 512, 'r');
    process();
    return ram[STATUS(k)];
}

static void assert_sectors(uint64_t sector, uint32_t n, uint8_t v)
{
    assert_int_equal(read_back(sector, n), VIRTIO_BLK_S_OK);
    for (uint32_t i = 0; i < n * 512; i++)
        assert_int_equal(ram[DATA + i], v);
}

static void test_cow_pool_exhaustion(void **state)
{
    (void)state;
    use_snapshot(2);
    assert_int_equal(write_sectors(0, 1, 0x11), VIRTIO_BLK_S_OK);     /* block 0 */
    assert_int_equal(write_sectors(8, 1, 0x22), VIRTIO_BLK_S_OK);     /* block 1 */
    assert_int_equal(write_sectors(1, 1, 0x33), VIRTIO_BLK_S_OK);     /* block 0 again */
    assert_int_equal(write_sectors(16, 1, 0x44), VIRTIO_BLK_S_IOERR); /* block 2: full */
    /* Blocks 1 and 2: would need one more block; nothing of it may land in block 1. */
    assert_int_equal(write_sectors(15, 2, 0x55), VIRTIO_BLK_S_IOERR);
    assert_int_equal(disk.stats.err_cow_full, 2);
    assert_int_equal(disk.stats.writes, 3);

    assert_sectors(0, 1, 0x11);
    assert_sectors(1, 1, 0x33);
    assert_sectors(8, 1, 0x22);
    assert_int_equal(read_back(15, 2), VIRTIO_BLK_S_OK);
    assert_memory_equal(ram + DATA, pristine + 15 * 512, 1024);
    assert_memory_equal(image, pristine, IMG_BYTES);

    /* Writes into copied blocks still work once the pool is full. */
    assert_int_equal(write_sectors(9, 7, 0x66), VIRTIO_BLK_S_OK);
    assert_sectors(9, 7, 0x66);
    assert_sectors(8, 1, 0x22);
}

static void put_range(uint64_t gpa, uint64_t sector, uint32_t n, uint32_t flags)
{
    wr64(gpa, sector);
    wr32(gpa + 8, n);
    wr32(gpa + 12, flags);
}

static void test_discard_snapshot(void **state)
{
    (void)state;
    use_snapshot(2);
    assert_int_equal(write_sectors(0, 8, 0x11), VIRTIO_BLK_S_OK);
    assert_int_equal(write_sectors(8, 8, 0x22), VIRTIO_BLK_S_OK);
    assert_int_equal(write_sectors(16, 1, 0x33), VIRTIO_BLK_S_IOERR);

    /* Discard sectors 4..15: block 1 wholly, block 0 only in part (kept). */
    put_range(DATA + 0x8000, 4, 12, 0);
    unsigned k = submit(VIRTIO_BLK_T_DISCARD, 0, DATA + 0x8000, 16, 'r');
    process();
    assert_int_equal(ram[STATUS(k)], VIRTIO_BLK_S_OK);
    assert_int_equal(disk.stats.discards, 1);
    assert_sectors(0, 8, 0x11);
    assert_int_equal(read_back(8, 8), VIRTIO_BLK_S_OK);
    assert_memory_equal(ram + DATA, pristine + 8 * 512, 4096);
    /* The freed block is taken again. */
    assert_int_equal(write_sectors(16, 1, 0x33), VIRTIO_BLK_S_OK);
    assert_sectors(16, 1, 0x33);

    /* Unmap flag: UNSUPP; a range past the end: IOERR, and nothing dropped. */
    put_range(DATA + 0x8000, 0, 8, VIRTIO_BLK_WZ_F_UNMAP);
    k = submit(VIRTIO_BLK_T_DISCARD, 0, DATA + 0x8000, 16, 'r');
    process();
    assert_int_equal(ram[STATUS(k)], VIRTIO_BLK_S_UNSUPP);
    put_range(DATA + 0x8000, 0, 8, 0);
    put_range(DATA + 0x8010, IMG_SECTORS, 1, 0);
    k = submit(VIRTIO_BLK_T_DISCARD, 0, DATA + 0x8000, 32, 'r');
    process();
    assert_int_equal(ram[STATUS(k)], VIRTIO_BLK_S_IOERR);
    assert_sectors(0, 8, 0x11);

    /* Not negotiated: UNSUPP. */
    vblk_set_features(&disk, 0);
    put_range(DATA + 0x8000, 0, 8, 0);
    k = submit(VIRTIO_BLK_T_DISCARD, 0, DATA + 0x8000, 16, 'r');
    process();
    assert_int_equal(ram[STATUS(k)], VIRTIO_BLK_S_UNSUPP);
    assert_sectors(0, 8, 0x11);

    /* Both slots freed (blocks 0 and 2), then both taken again from the free list:
     * the pool never grows past its 2 blocks, and a third new block is refused. */
    vblk_set_features(&disk, vblk_features(&disk));
    put_range(DATA + 0x8000, 0, 24, 0);
    k = submit(VIRTIO_BLK_T_DISCARD, 0, DATA + 0x8000, 16, 'r');
    process();
    assert_int_equal(ram[STATUS(k)], VIRTIO_BLK_S_OK);
    assert_int_equal(disk.cow_free_count, 2);
    assert_int_equal(write_sectors(24, 1, 0x44), VIRTIO_BLK_S_OK);
    assert_int_equal(write_sectors(32, 1, 0x55), VIRTIO_BLK_S_OK);
    assert_int_equal(write_sectors(0, 1, 0x66), VIRTIO_BLK_S_IOERR);
    assert_int_equal(disk.cow_bumped, 2);
    assert_int_equal(disk.cow_free_count, 0);
    assert_sectors(24, 1, 0x44);
    assert_sectors(32, 1, 0x55);
    assert_int_equal(read_back(0, 8), VIRTIO_BLK_S_OK);
    assert_memory_equal(ram + DATA, pristine, 4096);
}

static void test_ro_write_refused(void **state)
{
    (void)state;
    use_ro();
    fill(DATA, 0x99, 512);
    unsigned k = submit(VIRTIO_BLK_T_OUT, 0, DATA, 512, 'r');
    process();
    assert_int_equal(ram[STATUS(k)], VIRTIO_BLK_S_IOERR);
    assert_int_equal(used_len(0), 1);
    assert_int_equal(disk.stats.err_readonly, 1);
    assert_int_equal(disk.stats.writes, 0);
    assert_memory_equal(image, pristine, IMG_BYTES);
    /* Discard is not offered on RO, so it is unsupported, not performed. */
    vblk_set_features(&disk, ~0ull);
    k = submit(VIRTIO_BLK_T_DISCARD, 0, DATA, 16, 'r');
    process();
    assert_int_equal(ram[STATUS(k)], VIRTIO_BLK_S_UNSUPP);
}

/* ---- malformed requests ---------------------------------------------------------- */

static void test_out_of_range(void **state)
{
    (void)state;
    use_rw();
    static const struct { uint64_t sector; uint32_t n; } bad[] = {
        { IMG_SECTORS, 1 },                 /* the partial trailing sector */
        { IMG_SECTORS - 1, 2 },             /* runs past the end */
        { 1ull << 55, 1 },                  /* sector * 512 wraps to 0 */
        { (1ull << 55) - 1, 2 },            /* ... to 2^64 - 512, + len wraps */
        { UINT64_MAX, 1 },
    };
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fill(DATA, 0xcc, 1024);
        unsigned k = submit(VIRTIO_BLK_T_IN, bad[i].sector, DATA, bad[i].n * 512, 'w');
        fill(DATA + 0x2000, 0x99, 1024);
        unsigned k2 = submit(VIRTIO_BLK_T_OUT, bad[i].sector, DATA + 0x2000, bad[i].n * 512, 'r');
        process();
        assert_int_equal(ram[STATUS(k)], VIRTIO_BLK_S_IOERR);
        assert_int_equal(ram[STATUS(k2)], VIRTIO_BLK_S_IOERR);
        assert_int_equal(used_len(2 * i), 1);           /* no data reported */
        assert_int_equal(ram[DATA], 0xcc);              /* nor written */
        assert_int_equal(ram[DATA + 1023], 0xcc);
    }
    assert_memory_equal(image, pristine, IMG_BYTES);
    assert_int_equal(disk.stats.err_range, 10);
    /* A length that is not whole sectors. */
    unsigned k = submit(VIRTIO_BLK_T_IN, 0, DATA, 100, 'w');
    process();
    assert_int_equal(ram[STATUS(k)], VIRTIO_BLK_S_IOERR);
    /* The device still works. */
    assert_int_equal(read_back(IMG_SECTORS - 1, 1), VIRTIO_BLK_S_OK);
}

static void test_short_header(void **state)
{
    (void)state;
    use_ro();
    unsigned k = nreq++;
    put_hdr(k, VIRTIO_BLK_T_IN, 0);
    fill(DATA, 0xcc, 512);
    struct buf b[] = { { HDR(k), 8, false }, { DATA, 512, true }, { STATUS(k), 1, true } };
    offer_chain(b, 3);
    /* No readable part at all. */
    unsigned k2 = nreq++;
    ram[STATUS(k2)] = 0xee;
    struct buf b2[] = { { DATA + 0x1000, 512, true }, { STATUS(k2), 1, true } };
    offer_chain(b2, 2);
    process();
    assert_int_equal(ram[STATUS(k)], VIRTIO_BLK_S_IOERR);
    assert_int_equal(ram[STATUS(k2)], VIRTIO_BLK_S_IOERR);
    assert_int_equal(used_len(0), 1);
    assert_int_equal(used_len(1), 1);
    assert_int_equal(ram[DATA], 0xcc);
    assert_int_equal(disk.stats.err_header, 2);
    assert_int_equal(read_back(0, 1), VIRTIO_BLK_S_OK);
}

static void test_missing_or_readonly_status(void **state)
{
    (void)state;
    use_rw();
    /* Header only. */
    unsigned k = nreq++;
    put_hdr(k, VIRTIO_BLK_T_FLUSH, 0);
    struct buf b[] = { { HDR(k), 16, false } };
    offer_chain(b, 1);
    /* A write whose "status" byte is device-readable. */
    unsigned k2 = nreq++;
    put_hdr(k2, VIRTIO_BLK_T_OUT, 0);
    fill(DATA, 0x99, 512);
    struct buf b2[] = { { HDR(k2), 16, false }, { DATA, 512, false }, { STATUS(k2), 1, false } };
    offer_chain(b2, 3);
    process();
    assert_int_equal(rd16(USED + 2), 2);                /* both completed */
    assert_int_equal(used_len(0), 0);
    assert_int_equal(used_len(1), 0);
    assert_int_equal(ram[STATUS(k)], 0xee);             /* readable: never written */
    assert_int_equal(ram[STATUS(k2)], 0xee);
    assert_int_equal(disk.stats.err_no_status, 2);
    assert_memory_equal(image, pristine, IMG_BYTES);    /* the write did not happen */
    assert_int_equal(read_back(0, 1), VIRTIO_BLK_S_OK);
}

static void test_wrong_direction(void **state)
{
    (void)state;
    use_rw();
    /* A read whose data is device-readable. */
    fill(DATA, 0xcc, 512);
    unsigned k1 = submit(VIRTIO_BLK_T_IN, 0, DATA, 512, 'r');
    /* A write whose data is device-writable. */
    fill(DATA + 0x1000, 0x99, 512);
    unsigned k2 = submit(VIRTIO_BLK_T_OUT, 0, DATA + 0x1000, 512, 'w');
    /* A flush with data, a get-ID with readable data. */
    unsigned k3 = submit(VIRTIO_BLK_T_FLUSH, 0, DATA + 0x2000, 512, 'w');
    unsigned k4 = submit(VIRTIO_BLK_T_GET_ID, 0, DATA + 0x3000, 20, 'r');
    fill(DATA + 0x3000, 0xcc, 20);
    process();
    assert_int_equal(ram[STATUS(k1)], VIRTIO_BLK_S_IOERR);
    assert_int_equal(ram[STATUS(k2)], VIRTIO_BLK_S_IOERR);
    assert_int_equal(ram[STATUS(k3)], VIRTIO_BLK_S_IOERR);
    assert_int_equal(ram[STATUS(k4)], VIRTIO_BLK_S_IOERR);
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(used_len(i), 1);
    assert_int_equal(ram[DATA], 0xcc);
    assert_int_equal(ram[DATA + 0x1000], 0x99);
    assert_int_equal(ram[DATA + 0x3000], 0xcc);
    assert_memory_equal(image, pristine, IMG_BYTES);
    assert_int_equal(disk.stats.err_direction, 4);
}

/* ---- other request types ----------------------------------------------------------- */

static void test_get_id(void **state)
{
    (void)state;
    use_ro();
    fill(DATA, 0xcc, 32);
    unsigned k = submit(VIRTIO_BLK_T_GET_ID, 0, DATA, 20, 'w');
    process();
    assert_int_equal(ram[STATUS(k)], VIRTIO_BLK_S_OK);
    assert_int_equal(used_len(0), 21);
    assert_memory_equal(ram + DATA, "plinth-vda\0\0\0\0\0\0\0\0\0\0", 20);
    assert_int_equal(ram[DATA + 20], 0xcc);

    /* A 20-byte serial fills the field without a NUL; a longer one is cut. */
    vblk_init_ro(&disk, image, IMG_BYTES, "0123456789abcdefghijKLMN");
    fill(DATA, 0xcc, 32);
    k = submit(VIRTIO_BLK_T_GET_ID, 0, DATA, 32, 'w');
    process();
    assert_int_equal(ram[STATUS(k)], VIRTIO_BLK_S_OK);
    assert_int_equal(used_len(1), 21);
    assert_memory_equal(ram + DATA, "0123456789abcdefghij", 20);
    assert_int_equal(ram[DATA + 20], 0xcc);
    assert_int_equal(disk.stats.get_ids, 1);
}

static void test_flush(void **state)
{
    (void)state;
    use_rw();
    unsigned k = submit(VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0);
    assert_true(process());
    assert_int_equal(ram[STATUS(k)], VIRTIO_BLK_S_OK);
    assert_int_equal(used_len(0), 1);
    assert_int_equal(disk.stats.flushes, 1);
}

static void test_unknown_type(void **state)
{
    (void)state;
    use_rw();
    unsigned k = submit(0xff, 0, DATA, 512, 'w');
    unsigned k2 = submit(VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA, 16, 'r');
    process();
    assert_int_equal(ram[STATUS(k)], VIRTIO_BLK_S_UNSUPP);
    assert_int_equal(ram[STATUS(k2)], VIRTIO_BLK_S_UNSUPP);
    assert_int_equal(used_len(0), 1);
    assert_int_equal(disk.stats.err_unsupp, 2);
    assert_memory_equal(image, pristine, IMG_BYTES);
}

/* ---- batching and the queue ------------------------------------------------------- */

static void test_batch(void **state)
{
    (void)state;
    use_rw();
    unsigned k[5];
    k[0] = submit(VIRTIO_BLK_T_IN, 0, DATA, 512, 'w');
    fill(DATA + 0x1000, 0x42, 1024);
    k[1] = submit(VIRTIO_BLK_T_OUT, 2, DATA + 0x1000, 1024, 'r');
    k[2] = submit(VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0);
    k[3] = submit(VIRTIO_BLK_T_IN, 2, DATA + 0x2000, 1024, 'w');
    k[4] = submit(0x1234, 0, 0, 0, 0);
    uint64_t pub = q.stats.publishes, notif = q.stats.notifies;
    assert_true(process());
    assert_int_equal(q.stats.publishes - pub, 1);       /* one used->idx store */
    assert_int_equal(q.stats.notifies - notif, 1);      /* one interrupt */
    assert_int_equal(rd16(USED + 2), 5);
    static const uint32_t lens[] = { 513, 1, 1, 1025, 1 };
    static const uint8_t st[] = { 0, 0, 0, 0, VIRTIO_BLK_S_UNSUPP };
    uint16_t head = 0;
    for (unsigned i = 0; i < 5; i++) {
        assert_int_equal(used_id(i), head);
        assert_int_equal(used_len(i), lens[i]);
        assert_int_equal(ram[STATUS(k[i])], st[i]);
        head = (uint16_t)(head + (i == 2 || i == 4 ? 2 : 3));
    }
    for (unsigned i = 0; i < 1024; i++)
        assert_int_equal(ram[DATA + 0x2000 + i], 0x42);  /* read after write, in order */
    assert_int_equal(disk.stats.requests, 5);

    /* The driver asks for no interrupt: the batch is published, not signalled. */
    wr16(AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
    submit(VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0);
    submit(VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0);
    pub = q.stats.publishes;
    assert_false(process());
    assert_int_equal(q.stats.publishes - pub, 1);
    assert_int_equal(rd16(USED + 2), 7);
    /* Nothing to do: nothing published, no interrupt. */
    wr16(AVAIL, 0);
    pub = q.stats.publishes;
    assert_false(process());
    assert_int_equal(q.stats.publishes, pub);
}

static void test_chain_error_breaks_queue(void **state)
{
    (void)state;
    use_ro();
    submit(VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0);
    unsigned k = nreq++;
    put_hdr(k, VIRTIO_BLK_T_IN, 0);
    struct buf b[] = { { HDR(k), 16, false }, { RAM_SIZE - 256, 512, true },
                       { STATUS(k), 1, true } };
    offer_chain(b, 3);                                  /* a buffer outside RAM */
    enum vq_error e;
    vblk_process(&disk, &q, &g, &e);
    assert_int_equal(e, VQ_ERR_BUF_RANGE);
    assert_true(q.broken);
    assert_int_equal(disk.stats.queue_errors, 1);
    assert_int_equal(disk.stats.requests, 1);           /* the good one was served */
    assert_int_equal(ram[STATUS(k)], 0xee);
    vblk_process(&disk, &q, &g, &e);
    assert_int_equal(e, VQ_ERR_BROKEN);
    assert_int_equal(disk.stats.queue_errors, 1);       /* counted once */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_features_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_sectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_rw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cow_pool_exhaustion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discard_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ro_write_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_or_readonly_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_direction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_error_breaks_queue, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
