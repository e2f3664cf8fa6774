/* Boot self-tests, chosen on the command line with plinth.selftest=<name>: each one
 * provokes a fault (or a panic) so that tests/boot/test_panic.py can check the
 * report it ends in. */
#ifndef PLINTH_KERNEL_SELFTEST_H
#define PLINTH_KERNEL_SELFTEST_H

/* Runs the self-test the command line names, if any; at the end of boot.  The fatal
 * ones do not return. */
void selftest_run(void);

#endif
