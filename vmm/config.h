/* plinth.cfg: which guests to start and how.  Format (README.md, "Configuration"):
 *
 *   [plinth]                 global settings
 *   on_idle = poweroff       when every guest has stopped: poweroff | stay
 *   console = NAME|shell     where the host console's input goes at boot: that VM
 *                            (default: the first VM) or plinth's shell
 *   hotkey = ctrl-a|..|off   the console hotkey (default ctrl-a)
 *   snapshot_memory = 512M   what the VMs' snapshots may hold in all (0: none)
 *   [vm NAME]                one section per guest
 *   disk = PATH              a virtio-blk disk (repeatable: vda, vdb, ...)
 *   disk_mode = ro|rw|snapshot, disk_cow = 256M   how its disks take writes
 *   console = uart|virtio    virtio: a virtio console (hvc0) beside the UART
 *   net = NAME               a virtio-net NIC on the [net NAME] switch
 *   mac = 52:54:00:12:34:56  its MAC address (default: derived from the VM's name)
 *   [net NAME]               one virtual Ethernet switch inside plinth
 *   mtu = 1500               the largest frame payload its ports take (68..65520)
 *   key = value              # comments run to the end of the line
 *
 * The parser is pure (no allocation, no I/O) so it runs unchanged in unit tests.
 * It never guesses: the first problem stops parsing with the file's line number, what
 * is wrong and how to fix it, and the caller then starts none of the guests. */
#ifndef PLINTH_VMM_CONFIG_H
#define PLINTH_VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_VMS       16
#define CONFIG_MAX_MODULES   8
#define CONFIG_NAME_MAX      32
#define CONFIG_PATH_MAX      64
#define CONFIG_CMDLINE_MAX   256
#define CONFIG_MAX_CPUS      64
#define CONFIG_CONSOLE_LOG_DEFAULT (64u << 10)
#define CONFIG_CONSOLE_LOG_MIN     (4u << 10)
#define CONFIG_CONSOLE_LOG_MAX     (1u << 20)
#define CONFIG_SNAPSHOT_MEMORY_DEFAULT (512ull << 20)
#define CONFIG_SNAPSHOT_MEMORY_MAX     (64ull << 30)
#define CONFIG_MAX_DISKS     4             /* vda .. vdd */
#define CONFIG_DISK_COW_DEFAULT (256ull << 20)
#define CONFIG_DISK_COW_MAX     (4ull << 30)
#define CONFIG_MAX_NETS      8
#define CONFIG_NET_MTU_DEFAULT 1500
#define CONFIG_NET_MTU_MIN   68
#define CONFIG_NET_MTU_MAX   65520

enum config_on_idle { CONFIG_IDLE_POWEROFF, CONFIG_IDLE_STAY };
enum config_on_crash { CONFIG_CRASH_STOP, CONFIG_CRASH_RESTART };
enum config_disk_mode {
    CONFIG_DISK_RO,           /* never written; writes fail in the guest */
    CONFIG_DISK_RW,           /* writes go into the image in plinth's memory */
    CONFIG_DISK_SNAPSHOT,     /* writes kept apart, dropped at each VM (re)start */
};
enum config_loader {
    CONFIG_LOADER_NONE,       /* not given: an error for a VM */
    CONFIG_LOADER_MULTIBOOT,  /* Multiboot 1 or 2, from the image's header */
    CONFIG_LOADER_ELF,
    CONFIG_LOADER_FLAT,       /* raw bytes at `load`, entered at `entry` */
    CONFIG_LOADER_REALMODE,   /* raw bytes at `load`, entered in real mode at `entry` (seg:off) */
    CONFIG_LOADER_LINUX,      /* bzImage or PVH vmlinux */
};

struct config_vm {
    char     name[CONFIG_NAME_MAX];
    unsigned line;                          /* of its [vm NAME] header */
    enum config_loader loader;
    char     kernel[CONFIG_PATH_MAX];
    char     initrd[CONFIG_PATH_MAX];
    unsigned module_count;
    char     modules[CONFIG_MAX_MODULES][CONFIG_PATH_MAX];
    char     cmdline[CONFIG_CMDLINE_MAX];
    uint64_t memory;                        /* bytes */
    unsigned vcpus;
    uint64_t cpus;                          /* bit i: physical CPU i allowed */
    enum config_on_crash on_crash;
    bool     have_load, have_entry;
    uint64_t load;                          /* flat/realmode: guest-physical load address */
    uint64_t entry;                         /* flat: guest-physical; realmode: seg << 16 | off */
    bool     console;                       /* has the host console's input at boot: one VM */
    uint64_t console_log;                   /* bytes of its latest console output kept */
    unsigned cpu_weight;                    /* 1..1000: its share of a CPU it shares */
    unsigned cpu_cap;                       /* 1..100 percent of a CPU per vCPU; 0: none */
    bool     priority_high;                 /* priority = high */
    unsigned disk_count;                    /* virtio-blk disks vda, vdb, ... */
    char     disks[CONFIG_MAX_DISKS][CONFIG_PATH_MAX];
    enum config_disk_mode disk_mode;        /* of every disk of the VM (default ro) */
    uint64_t disk_cow;                      /* snapshot mode: bytes of writes kept per disk */
    bool     virtio_console;                /* console = virtio */
    char     net[CONFIG_NAME_MAX];          /* its NIC's network; empty: no NIC */
    unsigned net_index;                     /* that network's place in config.nets */
    unsigned net_line;                      /* of the net key */
    unsigned net_mtu;                       /* that network's mtu */
    bool     have_mac;
    uint8_t  mac[6];                        /* mac = (have_mac), else derived at attach */
};

struct config_net {
    char     name[CONFIG_NAME_MAX];
    unsigned line;
    unsigned mtu;
};

struct config {
    enum config_on_idle on_idle;
    char     console[CONFIG_NAME_MAX];      /* [plinth] console; empty: the first VM */
    bool     console_shell;                 /* console = shell */
    int      hotkey;                        /* its byte, 1 (Ctrl-A) .. 26; -1: off */
    uint64_t snapshot_memory;               /* bytes all snapshots may hold; 0: off */
    unsigned vm_count;
    struct config_vm vms[CONFIG_MAX_VMS];
    unsigned net_count;
    struct config_net nets[CONFIG_MAX_NETS];
};

struct config_error {
    unsigned line;                          /* 0: not tied to a line */
    char     message[200];
};

/* Parses len bytes of text.  Returns true and fills *cfg, or false with *err set. */
bool config_parse(const char *text, size_t len, struct config *cfg, struct config_error *err);
const char *config_loader_name(enum config_loader l);

#endif
