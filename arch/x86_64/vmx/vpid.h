/* VPIDs (SDM Vol. 3C §30.1): 16-bit tags of a vCPU's cached translations, 0 being the
 * host's.  Handed out lowest-free-first and taken back when a vCPU is destroyed, so
 * that creating and destroying VMs for as long as plinth runs never wraps onto 0 or
 * onto a live vCPU's tag. */
#ifndef PLINTH_ARCH_VMX_VPID_H
#define PLINTH_ARCH_VMX_VPID_H

#include <stdint.h>

#define VPID_COUNT 65536u

struct vpid_pool {
    uint64_t used[VPID_COUNT / 64];   /* bit n: VPID n is taken; bit 0 never is */
};

/* A free VPID (1..65535), now marked taken; 0 when every one is.  Safe from any CPU. */
uint16_t vpid_alloc(struct vpid_pool *p);
/* Gives back a VPID from vpid_alloc; 0 and VPIDs not taken are ignored. */
void vpid_free(struct vpid_pool *p, uint16_t vpid);

#endif
