#include "kernel/idle.h"
#include "kernel/log.h"
#include "drivers/acpi.h"
#include "arch/x86_64/cpu/cpu.h"

static bool poweroff_when_idle = true;

void idle_set_poweroff(bool poweroff)
{
    poweroff_when_idle = poweroff;
}

void idle_all_guests_stopped(void)
{
    if (!poweroff_when_idle) {
        log_info("idle: every guest has stopped; staying up (on_idle = stay)");
        return;
    }
    log_info("power: off");
    acpi_poweroff();
    log_error("power: ACPI poweroff did not take effect; halting. Switch the machine off by hand");
    cpu_halt_forever();
}
