/* The plinth.cfg parser (vmm/config.c) on any text: it either accepts a
 * configuration whose every value is within the bounds the rest of plinth relies on
 * (names and paths terminated, distinct VM names, memory 1 MiB-3 GiB, 1-64 vCPUs, a
 * CPU mask, one console VM at most, a loader for every VM), or refuses it with a
 * message and a line within the text. */
#include "fuzz.h"
#include "kernel/fmt.c"
#include "vmm/config.c"

static bool terminated(const char *s, size_t max)
{
    return memchr(s, 0, max) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct config cfg;
    struct config_error err;
    char *text = malloc(size ? size : 1);
    memcpy(text, data, size);
    unsigned lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += text[i] == '\n';
    memset(&err, 0x55, sizeof err);
    bool ok = config_parse(text, size, &cfg, &err);
    if (!ok) {
        FUZZ_CHECK(terminated(err.message, sizeof err.message) && err.message[0], "no message");
        FUZZ_CHECK(err.line <= lines, "line %u of %u", err.line, lines);
    } else {
        FUZZ_CHECK(cfg.vm_count <= CONFIG_MAX_VMS, "%u VMs", cfg.vm_count);
        unsigned consoles = 0;
        for (unsigned i = 0; i < cfg.vm_count; i++) {
            const struct config_vm *v = &cfg.vms[i];
            FUZZ_CHECK(terminated(v->name, sizeof v->name) && v->name[0], "VM %u name", i);
            FUZZ_CHECK(terminated(v->kernel, sizeof v->kernel) && terminated(v->initrd, sizeof v->initrd) &&
                       terminated(v->cmdline, sizeof v->cmdline), "VM %s strings", v->name);
            FUZZ_CHECK(v->loader != CONFIG_LOADER_NONE && v->kernel[0], "VM %s without loader or kernel", v->name);
            FUZZ_CHECK(v->memory >= (1ull << 20) && v->memory <= (3ull << 30), "VM %s memory %lu", v->name,
                       (unsigned long)v->memory);
            FUZZ_CHECK(v->vcpus >= 1 && v->vcpus <= CONFIG_MAX_CPUS, "VM %s vcpus %u", v->name, v->vcpus);
            FUZZ_CHECK(v->cpus != 0, "VM %s with no CPU", v->name);
            FUZZ_CHECK(v->module_count <= CONFIG_MAX_MODULES, "VM %s modules %u", v->name, v->module_count);
            for (unsigned m = 0; m < v->module_count; m++)
                FUZZ_CHECK(terminated(v->modules[m], CONFIG_PATH_MAX), "VM %s module %u", v->name, m);
            for (unsigned j = 0; j < i; j++)
                FUZZ_CHECK(strcmp(cfg.vms[j].name, v->name), "two VMs named %s", v->name);
            FUZZ_CHECK(v->console_log >= CONFIG_CONSOLE_LOG_MIN && v->console_log <= CONFIG_CONSOLE_LOG_MAX,
                       "VM %s console_log %lu", v->name, (unsigned long)v->console_log);
            FUZZ_CHECK(v->cpu_weight >= 1 && v->cpu_weight <= 1000, "VM %s cpu_weight %u", v->name, v->cpu_weight);
            FUZZ_CHECK(v->cpu_cap <= 100, "VM %s cpu_cap %u", v->name, v->cpu_cap);
            FUZZ_CHECK(strcmp(v->name, "shell") && strspn(v->name, "0123456789") < strlen(v->name),
                       "VM name %s the shell would misread", v->name);
            consoles += v->console;
        }
        FUZZ_CHECK(consoles <= 1, "%u console VMs", consoles);
        FUZZ_CHECK(!cfg.console_shell || consoles == 0, "console = shell and a console VM");
        FUZZ_CHECK(cfg.hotkey == -1 || (cfg.hotkey >= 1 && cfg.hotkey <= 26 && cfg.hotkey != 8 && cfg.hotkey != 9 &&
                                         cfg.hotkey != 10 && cfg.hotkey != 13), "hotkey %d", cfg.hotkey);
    }
    free(text);
    return 0;
}
