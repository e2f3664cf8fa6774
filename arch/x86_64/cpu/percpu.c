#include "arch/x86_64/cpu/percpu.h"
#include "arch/x86_64/cpu/cpu.h"

bool percpu_ready;

void percpu_install(struct percpu_head *head)
{
    wrmsr(MSR_GS_BASE, (uint64_t)(uintptr_t)head);
    __atomic_store_n(&percpu_ready, true, __ATOMIC_RELEASE);
}
