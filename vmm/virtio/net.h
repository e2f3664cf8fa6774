/* The virtio-net device engine (virtio 1.2 §5.1, network device): one queue pair,
 * no control queue, no multiqueue, so two queues (§5.1.2): receiveq 0, buffers the
 * driver gives the device to fill with frames from the link, and transmitq 1, the
 * driver's frames for the link.  Not tied to a VM, a transport or a link: the
 * transport hands it a queue and the VM's gmem, the link's side hands it frames to
 * deliver (vnet_rx) and takes the guest's frames from a callback (vnet_tx).
 *
 * Every frame is preceded by struct virtio_net_hdr (§5.1.6), always 12 bytes with
 * VERSION_1, num_buffers included; the API carries it as struct vnet_hdr in host
 * order.  The engine never computes a segmentation: GSO frames pass through whole
 * between drivers that both negotiated it, checksums likewise; the one thing it
 * computes is a missing checksum for a driver that cannot take a partial one.
 *
 * Every chain comes from the guest and is hostile.  A transmit chain is copied
 * once into the engine's own frame buffer and checked there, so the guest
 * rewriting it meanwhile changes nothing the checks passed; a bad one (a
 * device-writable buffer, shorter than the header, a frame too short or too long,
 * a header the negotiated features do not allow, see enum vnet_drop) is counted
 * by reason, completed with length 0, and the device keeps working.  A receive
 * chain with a device-readable buffer, or with too few writable bytes to start a
 * frame, is completed with length 0, untouched.  Only the queue engine's chain
 * errors (a loop, a buffer outside RAM, ...) break a queue (DEVICE_NEEDS_RESET).
 *
 * Bounded work: vnet_tx takes at most VNET_TX_BATCH_CHAINS chains and stops taking
 * more once it has copied VNET_TX_BUDGET bytes (each chain is copied whole, so at
 * most VNET_TX_BUDGET + VNET_FRAME_MAX bytes); *more then asks the caller to call
 * again.  vnet_rx takes at most VNET_RX_CHAINS chains for one frame, and no more
 * than the queue's size in all (the unusable ones before the frame included): the
 * transport offers queues of at most VNET_QUEUE_MAX.
 *
 * Receiving: vnet_rx places one frame, or gives every chain it took for it back
 * to the driver (vq_unpop) when there are too few, so a frame is never split
 * between what the driver sees now and later, and the caller keeps it to retry.
 * Completions are not published per frame: after a batch of vnet_rx calls the
 * caller calls vnet_rx_flush, which publishes them with one used->idx store and
 * says whether to interrupt.  The caller delivers its frames in order and stops at
 * the first VNET_RX_NO_BUFFERS (that call asked for the driver's next kick; a
 * later call that succeeds would cancel the request).
 *
 * Calls on one device are serialised by the caller.  struct vnet is about 72 KiB
 * (the transmit frame buffer and a chain's buffer list): allocate it beside the
 * transport. */
#ifndef PLINTH_VMM_VIRTIO_NET_H
#define PLINTH_VMM_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/virtio/guest_mem.h"
#include "vmm/virtio/virtqueue.h"

/* Feature bits, §5.1.3.  vnet_features offers the ones marked "offered". */
#define VIRTIO_NET_F_CSUM           0   /* offered: the driver may send partial checksums */
#define VIRTIO_NET_F_GUEST_CSUM     1   /* offered: the driver takes partial checksums */
#define VIRTIO_NET_F_MTU            3   /* offered: mtu in the config space */
#define VIRTIO_NET_F_MAC            5   /* offered: mac in the config space */
#define VIRTIO_NET_F_GUEST_TSO4     7   /* offered: the driver takes TCPv4 GSO frames */
#define VIRTIO_NET_F_GUEST_TSO6     8   /* offered */
#define VIRTIO_NET_F_GUEST_ECN      9
#define VIRTIO_NET_F_GUEST_UFO      10
#define VIRTIO_NET_F_HOST_TSO4      11  /* offered: the driver may send TCPv4 GSO frames */
#define VIRTIO_NET_F_HOST_TSO6      12  /* offered */
#define VIRTIO_NET_F_HOST_ECN       13
#define VIRTIO_NET_F_HOST_UFO       14
#define VIRTIO_NET_F_MRG_RXBUF      15  /* offered: a received frame may span chains */
#define VIRTIO_NET_F_STATUS         16  /* offered: status in the config space */
#define VIRTIO_NET_F_CTRL_VQ        17
#define VIRTIO_NET_F_MQ             22

/* §5.1.2: one pair; the control queue exists only with CTRL_VQ. */
#define VNET_QUEUE_RX               0
#define VNET_QUEUE_TX               1
#define VNET_NUM_QUEUES             2

/* struct virtio_net_config (§5.1.4) up to mtu: mac[6], le16 status, le16
 * max_virtqueue_pairs, le16 mtu.  Later fields exist only with features not
 * offered (SPEED_DUPLEX, RSS, HASH_REPORT). */
#define VNET_CONFIG_BYTES           12
#define VNET_CFG_MAC                0
#define VNET_CFG_STATUS             6
#define VNET_CFG_MAX_PAIRS          8
#define VNET_CFG_MTU                10
#define VIRTIO_NET_S_LINK_UP        1

/* struct virtio_net_hdr (§5.1.6): flags, gso_type, le16 hdr_len, gso_size,
 * csum_start, csum_offset, num_buffers. */
#define VNET_HDR_BYTES              12
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_F_RSC_INFO   4
#define VIRTIO_NET_HDR_GSO_NONE     0
#define VIRTIO_NET_HDR_GSO_TCPV4    1
#define VIRTIO_NET_HDR_GSO_UDP      3
#define VIRTIO_NET_HDR_GSO_TCPV6    4
#define VIRTIO_NET_HDR_GSO_UDP_L4   5
#define VIRTIO_NET_HDR_GSO_ECN      0x80

/* Ethernet: the header (destination, source, ethertype), an 802.1Q tag's extra
 * bytes and its ethertype. */
#define VNET_ETH_HLEN               14
#define VNET_VLAN_HLEN              4
#define VNET_ETH_P_8021Q            0x8100

/* §5.1.4.1: "The device MUST set mtu to between 68 and 65535 inclusive". */
#define VNET_MTU_MIN                68
#define VNET_MTU_MAX                65535
#define VNET_MTU_DEFAULT            1500

/* The largest header + frame either way: a 64 KiB GSO frame (§5.1.6.3 puts the
 * largest at 65589 bytes with an IPv6 header; the IP length field bounds the
 * payload, so 64 KiB of frame is what any driver sends). */
#define VNET_FRAME_MAX              (65536 + VNET_HDR_BYTES)

/* The largest queue the transport may offer (queue_max).  No seg_max exists for a
 * network device, so a chain may be as long as the queue (§2.7.5.3.1); the
 * device's buffer list holds that many and a longer chain breaks the queue
 * (VQ_ERR_CHAIN_SEGS). */
#define VNET_QUEUE_MAX              256
#define VNET_CHAIN_SEGS             VNET_QUEUE_MAX

/* Per-call budgets (see the top of this file). */
#define VNET_TX_BATCH_CHAINS        64
#define VNET_TX_BUDGET              (256u * 1024)
#define VNET_RX_CHAINS              VNET_QUEUE_MAX

/* A frame's header in host order.  On transmit, vnet_tx hands it over with the
 * fields the flags and gso_type do not make meaningful set to 0 (csum_* without
 * NEEDS_CSUM, hdr_len and gso_size without GSO, num_buffers always); on receive,
 * num_buffers is ignored and the engine writes its own. */
struct vnet_hdr {
    uint8_t  flags;
    uint8_t  gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers;
};

/* Why a frame was dropped; counted per direction (vnet_stats.tx_drop/rx_drop). */
enum vnet_drop {
    VNET_DROP_WRITABLE,         /* tx: a device-writable buffer (§5.1.6.2) */
    VNET_DROP_SHORT,            /* tx: fewer bytes than the header */
    VNET_DROP_RUNT,             /* frame shorter than an Ethernet header */
    VNET_DROP_OVERSIZE,         /* header + frame over VNET_FRAME_MAX */
    VNET_DROP_MTU,              /* non-GSO frame over mtu + Ethernet header (+ 802.1Q tag) */
    VNET_DROP_FLAGS,            /* tx: DATA_VALID or RSC_INFO, which a driver must not set */
    VNET_DROP_CSUM_FEATURE,     /* tx: NEEDS_CSUM without VIRTIO_NET_F_CSUM */
    VNET_DROP_CSUM_RANGE,       /* NEEDS_CSUM with the checksum field past the frame */
    VNET_DROP_GSO_TYPE,         /* gso_type not NONE, TCPV4 or TCPV6 (ECN, UDP refused) */
    VNET_DROP_GSO_FEATURE,      /* GSO type not negotiated: HOST_TSO4/6 (tx), GUEST_TSO4/6 (rx) */
    VNET_DROP_GSO_CSUM,         /* GSO without NEEDS_CSUM */
    VNET_DROP_GSO_SIZE,         /* GSO with gso_size 0 or (tx) over mtu */
    VNET_DROP_HDR_LEN,          /* GSO with hdr_len past the frame's end */
    VNET_DROP_NOT_READY,        /* rx: the receiveq is not enabled */
    VNET_DROP_TOO_SMALL,        /* rx without MRG_RXBUF: the next chain cannot hold it */
    VNET_DROP_NO_ROOM,          /* rx with MRG_RXBUF: more chains than the queue holds */
    VNET_DROP_IO,               /* a checked copy that failed (not expected) */
    VNET_DROP_COUNT
};

/* A short name for one counter line ("mtu", "gso-feature", ...). */
const char *vnet_drop_name(enum vnet_drop reason);

/* What the shell shows for a network device. */
struct vnet_stats {
    uint64_t tx_frames;         /* frames handed to out_fn */
    uint64_t tx_bytes;          /* their bytes, headers not counted */
    uint64_t rx_frames;         /* frames placed in receive buffers */
    uint64_t rx_bytes;          /* their bytes, headers not counted */
    uint64_t rx_merged;         /* frames of them spread over more than one chain */
    uint64_t rx_csum_filled;    /* checksums completed for a driver without GUEST_CSUM */
    uint64_t rx_bad_chains;     /* receive chains completed unused (readable, too small) */
    uint64_t rx_no_buffers;     /* vnet_rx calls that found too few buffers */
    uint64_t tx_drop[VNET_DROP_COUNT];
    uint64_t rx_drop[VNET_DROP_COUNT];
    uint64_t queue_errors;      /* engine errors that broke a queue */
};

/* One chain taken for the frame being received. */
struct vnet_rx_taken {
    uint16_t head;
    bool     bad;               /* completed with length 0 after the frame's chains */
    uint32_t len;               /* bytes written into it */
};

struct vnet {
    uint8_t  mac[6];
    uint16_t mtu;
    uint64_t features;          /* negotiated (vnet_set_features) */

    /* One chain's buffer list, reused by both queues (calls are serialised). */
    struct vq_seg seg[VNET_CHAIN_SEGS];
    /* Where the first chain of the frame being received keeps its header, which
     * is written last (num_buffers is known only then): 12 bytes lie in at most
     * 12 buffers. */
    struct vq_seg rx_hdr_seg[VNET_HDR_BYTES];
    uint16_t rx_hdr_n_seg;
    struct vnet_rx_taken rx_taken[VNET_RX_CHAINS];
    /* The transmit frame, header first, copied out of the guest. */
    uint8_t  tx_buf[VNET_FRAME_MAX];

    struct vnet_stats stats;
};

/* A device with address mac and link MTU mtu (0: VNET_MTU_DEFAULT), counters zero,
 * no features negotiated.  false (and *n unusable) when mtu is outside 68..65535. */
bool vnet_init(struct vnet *n, const uint8_t mac[6], uint32_t mtu);

/* Device reset (§2.4; the transport's ops.reset, after it has reset both queues):
 * the negotiated features are forgotten until the next vnet_set_features.  Nothing
 * else is held between calls; counters are kept. */
void vnet_reset(struct vnet *n);

/* Device features to offer (§5.1.3): CSUM, GUEST_CSUM, MTU, MAC, GUEST_TSO4/6,
 * HOST_TSO4/6, MRG_RXBUF, STATUS.  The transport adds VERSION_1 and the ring
 * features the queue engine implements (INDIRECT_DESC, EVENT_IDX). */
uint64_t vnet_features(void);

/* The features the driver accepted (FEATURES_OK).  Only offered ones are kept, and
 * one whose requirement (§5.1.3.1) the driver did not accept counts as not
 * negotiated: TSO4/6 without the matching CSUM. */
void vnet_set_features(struct vnet *n, uint64_t accepted);

/* Writes the configuration space (§5.1.4) into buf: min(cap, VNET_CONFIG_BYTES)
 * bytes, returned.  The fields never change (§5.1.4.1: mtu "MUST NOT" once set),
 * whatever the driver negotiates; the driver may not write them (§5.1.4.2). */
size_t vnet_config(const struct vnet *n, void *buf, size_t cap);

/* Where the guest's frames go: h (validated against the negotiated features), the
 * frame of len bytes (14 .. 65536).  Both are only good during the call. */
typedef void vnet_out_fn(void *ctx, const struct vnet_hdr *h, const uint8_t *frame, size_t len);

/* Serves the transmitq q: hands every available chain's frame to out, or drops it
 * (counted in tx_drop), and completes each with length 0; the completions of a
 * call are published with one used-index update.  Stops after VNET_TX_BATCH_CHAINS
 * chains or VNET_TX_BUDGET bytes.  Returns whether the driver must be interrupted.
 *
 * *more (if not NULL): true when the budget stopped the call with work possibly
 * left; the caller must call again (kicks stay disabled until the queue drains).
 * *err (if not NULL): VQ_EMPTY when the queue drained, VQ_OK when the budget
 * stopped it, a driver error when a chain broke the queue (log it once), or
 * VQ_ERR_BROKEN / VQ_ERR_NOT_READY. */
bool vnet_tx(struct vnet *n, struct vq *q, const struct gmem *g, vnet_out_fn *out, void *ctx,
             bool *more, enum vq_error *err);

enum vnet_rx_result {
    VNET_RX_DELIVERED,          /* in the driver's buffers, published by vnet_rx_flush */
    VNET_RX_NO_BUFFERS,         /* too few buffers: nothing taken; keep it, retry at
                                 * the receiveq's next notification */
    VNET_RX_DROPPED,            /* can never be delivered as it is; counted in rx_drop */
    VNET_RX_BROKEN,             /* the receiveq is broken (or just broke) */
};

/* Places the frame (len bytes, header h from the link's side) in the receiveq q's
 * buffers, as the negotiated features allow:
 *   - without MRG_RXBUF, header and frame in the next chain (§5.1.6.3.2), dropped
 *     if it is too small; with it, spread over as many chains as it takes, each
 *     but the last filled whole (§5.1.6.4.1), num_buffers their count;
 *   - a GSO frame only to a driver with GUEST_TSO4/6 (dropped otherwise), gso
 *     fields and NEEDS_CSUM kept;
 *   - NEEDS_CSUM kept for a driver with GUEST_CSUM; for one without, the checksum
 *     is computed (RFC 1071) and stored, and flags are 0 (§5.1.6.4.1).  DATA_VALID
 *     is never set;
 *   - a non-GSO frame over mtu + 14 (+ 4 with an 802.1Q tag) is dropped.
 * When buffers run out part way, every chain taken for the frame is given back,
 * available buffer notifications are enabled so that the driver's next kick brings
 * the caller back, and the result is VNET_RX_NO_BUFFERS.  Nothing is published.
 *
 * *err (if not NULL): VQ_OK, VQ_EMPTY with NO_BUFFERS, a driver error when a chain
 * broke the queue (log it once), VQ_ERR_BROKEN, or VQ_ERR_NOT_READY (DROPPED). */
enum vnet_rx_result vnet_rx(struct vnet *n, struct vq *q, const struct gmem *g, const struct vnet_hdr *h,
                            const uint8_t *frame, size_t len, enum vq_error *err);

/* Publishes what the vnet_rx calls since the last flush completed, with one
 * used->idx store, and returns whether the driver must be interrupted (its
 * VIRTQ_AVAIL_F_NO_INTERRUPT or used_event, §2.7.7).  *err (if not NULL): VQ_OK,
 * or the error when the publish broke the queue (log it once). */
bool vnet_rx_flush(struct vnet *n, struct vq *q, const struct gmem *g, enum vq_error *err);

#endif
