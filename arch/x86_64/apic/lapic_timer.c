#include "arch/x86_64/apic/lapic_timer.h"
#include "arch/x86_64/apic/lapic.h"
#include "arch/x86_64/apic/timer.h"

void lapic_timer_oneshot(uint64_t ns)
{
    /* Divide by 16 (SDM Vol. 3A §12.5.4): a 32-bit count then spans seconds even
     * on fast buses. */
    uint64_t hz = timer_lapic_hz() / 16;
    uint64_t count = hz ? ns * hz / 1000000000ull : 0;
    if (count == 0)
        count = 1;
    if (count > 0xffffffffull)
        count = 0xffffffffull;
    lapic_write(LAPIC_TIMER_DCR, LAPIC_TIMER_DIV_16);
    lapic_write(LAPIC_LVT_TIMER, LAPIC_TIMER_VECTOR);   /* one-shot, unmasked */
    lapic_write(LAPIC_TIMER_ICR, (uint32_t)count);
}

void lapic_timer_cancel(void)
{
    /* A zero initial count stops the timer (§12.5.4). */
    lapic_write(LAPIC_TIMER_ICR, 0);
}
