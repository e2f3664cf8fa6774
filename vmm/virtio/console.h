/* The virtio-console request engine (virtio 1.2 §5.3, console device): one port,
 * no VIRTIO_CONSOLE_F_MULTIPORT, so two queues (§5.3.2): receiveq 0, buffers the
 * driver gives the device to fill with input, and transmitq 1, the driver's
 * output.  Not tied to a VM or to a transport: the transport hands it a queue and
 * the VM's gmem on a notification, the host console hands it typed bytes
 * (vcon_input), and the guest's output goes to a sink the caller names.
 *
 * Bounded work: a call takes at most VCON_BATCH_CHAINS chains and, on the
 * transmitq, copies at most VCON_TX_BUDGET bytes, whatever the driver offers (a
 * chain may be as long as the queue engine's byte limit, up to 4 GiB).  A call
 * that stops on its budget sets *more: the caller must call again, and the work
 * resumes where it stopped.  A transmit chain longer than the budget is output
 * over several calls and completed when its last byte is out, so its bytes
 * arrive whole and in order.
 *
 * Input waits in a ring of VCON_IN_MAX bytes until the driver has made a receive
 * buffer available; bytes that do not fit are dropped and counted (the host
 * console may check vcon_input_room first to hold them back instead).
 *
 * Every chain comes from the guest and is hostile.  §5.3.6.1: "The driver MUST NOT
 * put a device-readable buffer in a receiveq.  The driver MUST NOT put a
 * device-writable buffer in a transmitq."  A chain that does is completed with
 * length 0, untouched and unread, counted, and the device keeps working; only the
 * queue engine's chain errors (a loop, a buffer outside RAM, ...) break the queue
 * (DEVICE_NEEDS_RESET).
 *
 * Calls on one console are serialised by the caller.  struct vcon is about 5 KiB
 * (two buffer lists of VCON_CHAIN_SEGS): allocate it beside the transport. */
#ifndef PLINTH_VMM_VIRTIO_CONSOLE_H
#define PLINTH_VMM_VIRTIO_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/virtio/guest_mem.h"
#include "vmm/virtio/virtqueue.h"

/* Feature bits, §5.3.3.  None is offered: no console size, one port, and no
 * emergency write (emerg_wr is then not valid and the transport drops writes to
 * the configuration space). */
#define VIRTIO_CONSOLE_F_SIZE           0
#define VIRTIO_CONSOLE_F_MULTIPORT      1
#define VIRTIO_CONSOLE_F_EMERG_WRITE    2

/* §5.3.2: port 0's queues; the control queues (2, 3) exist only with MULTIPORT. */
#define VCON_QUEUE_RX                   0
#define VCON_QUEUE_TX                   1
#define VCON_NUM_QUEUES                 2

/* struct virtio_console_config (§5.3.4): two le16 console dimensions (valid with
 * F_SIZE), le32 max_nr_ports (with F_MULTIPORT), le32 emerg_wr (with
 * F_EMERG_WRITE). */
#define VCON_CONFIG_BYTES               12
#define VCON_CFG_DIMENSIONS             0
#define VCON_CFG_MAX_NR_PORTS           4
#define VCON_CFG_EMERG_WR               8

/* The largest queue the transport may offer (queue_max).  No seg_max exists for a
 * console, so a driver may use a chain as long as the queue (§2.7.5.3.1: "A driver
 * MUST NOT create a descriptor chain longer than the Queue Size of the device");
 * the device's buffer list holds that many, and a longer chain breaks the queue
 * (VQ_ERR_CHAIN_SEGS). */
#define VCON_QUEUE_MAX                  128
#define VCON_CHAIN_SEGS                 VCON_QUEUE_MAX

/* Per-call budgets (see the top of this file). */
#define VCON_BATCH_CHAINS               64
#define VCON_NOTIFY_ROUNDS              8
#define VCON_TX_BUDGET                  (64u * 1024)
/* The sink gets the guest's output in pieces of at most this many bytes. */
#define VCON_TX_PIECE                   512
/* Input waiting for receive buffers; a power of 2. */
#define VCON_IN_MAX                     256u

/* What the shell shows for a console. */
struct vcon_stats {
    uint64_t tx_chains;         /* transmit chains output and completed */
    uint64_t tx_bytes;          /* bytes handed to the sink */
    uint64_t tx_bad;            /* transmit chains with a device-writable buffer */
    uint64_t rx_chains;         /* receive chains filled and completed */
    uint64_t rx_bytes;          /* bytes written into receive buffers */
    uint64_t rx_bad;            /* receive chains with a device-readable buffer or no
                                 * writable byte */
    uint64_t rx_dropped;        /* input bytes dropped: ring full, or device reset */
    uint64_t io_errors;         /* a checked copy that failed (not expected) */
    uint64_t queue_errors;      /* engine errors that broke a queue */
};

struct vcon {
    /* The transmit chain being output (tx_busy): its buffers, head, and how far
     * the sink has got.  Held across calls only when the byte budget stopped it;
     * tx_avail_idx is the queue's last_avail_idx right after the chain was taken,
     * by which a queue reset meanwhile is recognised. */
    struct vq_seg tx_seg[VCON_CHAIN_SEGS];
    bool     tx_busy;
    uint16_t tx_head;
    uint16_t tx_n_seg;
    uint16_t tx_seg_i;
    uint32_t tx_off;
    uint16_t tx_avail_idx;
    uint8_t  tx_buf[VCON_TX_PIECE];

    /* One receive chain's buffers, taken and completed within a call. */
    struct vq_seg rx_seg[VCON_CHAIN_SEGS];

    /* Input not yet in a receive buffer: in_len bytes from in_buf[in_head]. */
    uint8_t  in_buf[VCON_IN_MAX];
    uint16_t in_head;
    uint16_t in_len;

    struct vcon_stats stats;
};

/* A console with no input waiting and nothing in flight, counters zero. */
void vcon_init(struct vcon *c);

/* Device reset (§2.4; the transport's ops.reset, after it has reset both queues):
 * the transmit chain in progress is forgotten (its queue is gone; nothing of it
 * is output after the reset), and waiting input is dropped and counted in
 * rx_dropped, so a driver that starts again sees only what is typed after it did.
 * Counters are kept. */
void vcon_reset(struct vcon *c);

/* Device features to offer (§5.3.3): none.  The transport adds VERSION_1 and the
 * ring features the queue engine implements (INDIRECT_DESC, EVENT_IDX). */
uint64_t vcon_features(void);

/* Writes the configuration space (§5.3.4) into buf: min(cap, VCON_CONFIG_BYTES)
 * bytes, all zero (no field is valid without the features), returned. */
size_t vcon_config(void *buf, size_t cap);

/* Where the guest's output goes: n (1..VCON_TX_PIECE) bytes, in the order the
 * guest wrote them.  b is only good during the call. */
typedef void vcon_out_fn(void *ctx, const uint8_t *b, size_t n);

/* Serves the transmitq q: hands the readable bytes of every available chain to
 * out, finishing the chain in progress first, and completes each chain with
 * length 0 once its last byte is out; the completions of a call are published
 * with one used-index update.  Stops after VCON_BATCH_CHAINS chains or
 * VCON_TX_BUDGET bytes.  Returns whether the driver must be interrupted.
 *
 * *more (if not NULL): true when the budget stopped the call with work possibly
 * left; the caller must call again (kicks stay disabled until the queue drains).
 * *err (if not NULL): VQ_EMPTY when the queue drained, VQ_OK when the budget
 * stopped it, a driver error when a chain broke the queue (log it once), or
 * VQ_ERR_BROKEN / VQ_ERR_NOT_READY. */
bool vcon_tx(struct vcon *c, struct vq *q, const struct gmem *g, vcon_out_fn *out, void *ctx,
             bool *more, enum vq_error *err);

/* Input from the host console: queues up to vcon_input_room() of the n bytes at b,
 * drops (and counts) the rest, returns how many were queued.  The caller then
 * runs vcon_rx. */
size_t vcon_input(struct vcon *c, const uint8_t *b, size_t n);

/* Bytes waiting for a receive buffer / room left for more. */
static inline size_t vcon_input_pending(const struct vcon *c)
{
    return c->in_len;
}

static inline size_t vcon_input_room(const struct vcon *c)
{
    return VCON_IN_MAX - c->in_len;
}

/* Serves the receiveq q: moves waiting input into the driver's receive buffers in
 * order, filling each chain's writable buffers as one stream, completing each with
 * the bytes written; one used-index update per call.  Takes buffers only while
 * input waits.  When input waits and no buffer is left, available buffer
 * notifications are enabled, so the driver's next kick brings the device back;
 * with nothing to deliver they are left disabled (vcon_input is what brings new
 * work).  Stops after VCON_BATCH_CHAINS chains.  Returns whether the driver must
 * be interrupted.
 *
 * *more (if not NULL): true when the chain budget stopped the call with input
 * still waiting; the caller must call again.  *err (if not NULL): VQ_EMPTY when
 * input waits for buffers the driver has not given, VQ_OK when nothing is left to
 * deliver or the budget stopped it, a driver error when a chain broke the queue
 * (log it once), or VQ_ERR_BROKEN / VQ_ERR_NOT_READY. */
bool vcon_rx(struct vcon *c, struct vq *q, const struct gmem *g, bool *more, enum vq_error *err);

#endif
