/* Boot self-tests, chosen on the command line with plinth.selftest=<name>: each one
 * provokes a fault (or a panic) so that tests/boot/test_panic.py can check the
 * report it ends in. */
#ifndef PLINTH_KERNEL_SELFTEST_H
#define PLINTH_KERNEL_SELFTEST_H

#include <stdbool.h>

/* Runs the self-test the command line names, if any; at the end of boot.  The fatal
 * ones do not return. */
void selftest_run(void);
/* Whether the command line chose self-test name (plinth.selftest=name). */
bool selftest_chosen(const char *name);
/* plinth.selftest=vm-cycle, instead of the config's guests: the core's VM life cycle
 * (kernel/selftest_vm.c); true if it was chosen and started.  Needs the schedulers
 * set up; it powers off when done. */
bool selftest_vm_cycle_start(void);

#endif
