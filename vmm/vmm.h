/* The monitor's entry from the boot sequence: plinth.cfg -> running VMs. */
#ifndef PLINTH_VMM_VMM_H
#define PLINTH_VMM_VMM_H

#include "vmm/config.h"

/* Creates and starts every VM of cfg.  Returns how many started; a VM that cannot
 * start (missing file, bad image, no memory) is logged with the cause and skipped,
 * and the others start.  When none is left running, the core's on_idle applies. */
int vmm_start(const struct config *cfg);

#endif
