/* plinth's shell: a prompt on the host console, reached with the hotkey (or at
 * boot with [plinth] console = shell), and commands to see and run the VMs.  Runs
 * on the boot CPU from the console multiplexer (kernel/vmcon.c). */
#ifndef PLINTH_KERNEL_SHELL_H
#define PLINTH_KERNEL_SHELL_H

/* The focus came to the shell: show the prompt. */
void shell_enter(void);
/* The focus leaves: the prompt line is taken off the screen. */
void shell_leave(void);
/* One byte typed at the shell. */
void shell_key(unsigned char c);

#endif
