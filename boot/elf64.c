/* ELF64 executable validation (see elf64.h).  The file is hostile until proven
 * otherwise: every field is read byte by byte (the buffer may be unaligned) and
 * every sum is checked for wrap-around before it is compared. */
#include "boot/elf64.h"

/* e_ident indices and values (gABI "ELF Identification"). */
#define EI_CLASS      4
#define EI_DATA       5
#define EI_VERSION    6
#define ELFCLASS64    2
#define ELFDATA2LSB   1
#define EV_CURRENT    1

/* Ehdr field offsets (ELF-64 Object File Format, "File header"). */
#define EH_TYPE       16
#define EH_MACHINE    18
#define EH_VERSION    20
#define EH_ENTRY      24
#define EH_PHOFF      32
#define EH_PHENTSIZE  54
#define EH_PHNUM      56

/* Phdr field offsets (ELF-64 Object File Format, "Program header table"). */
#define PH_TYPE       0
#define PH_FLAGS      4
#define PH_OFFSET     8
#define PH_VADDR      16
#define PH_PADDR      24
#define PH_FILESZ     32
#define PH_MEMSZ      40
#define PH_ALIGN      48

static uint64_t elf64_rd(const uint8_t *p, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = bytes; i-- > 0;)
        v = (v << 8) | p[i];
    return v;
}

static void elf64_read_phdr(const struct elf64_image *img, uint16_t i,
                            uint32_t *type, struct elf64_segment *seg)
{
    const uint8_t *ph = img->data + img->phoff + (uint64_t)i * ELF64_PHDR_SIZE;
    *type = (uint32_t)elf64_rd(ph + PH_TYPE, 4);
    seg->index  = i;
    seg->flags  = (uint32_t)elf64_rd(ph + PH_FLAGS, 4);
    seg->offset = elf64_rd(ph + PH_OFFSET, 8);
    seg->vaddr  = elf64_rd(ph + PH_VADDR, 8);
    seg->paddr  = elf64_rd(ph + PH_PADDR, 8);
    seg->filesz = elf64_rd(ph + PH_FILESZ, 8);
    seg->memsz  = elf64_rd(ph + PH_MEMSZ, 8);
    seg->align  = elf64_rd(ph + PH_ALIGN, 8);
}

static enum elf64_status elf64_fail(struct elf64_image *img, enum elf64_status s,
                                    uint64_t value, uint16_t index, uint16_t index2)
{
    img->status = s;
    img->err_value = value;
    img->err_index = index;
    img->err_index2 = index2;
    return s;
}

/* Checks one PT_LOAD on its own. */
static enum elf64_status elf64_check_load(struct elf64_image *img,
                                          const struct elf64_segment *s)
{
    if (s->filesz > s->memsz)
        return elf64_fail(img, ELF64_ERR_SEG_FILESZ, 0, s->index, 0);
    if (s->offset > UINT64_MAX - s->filesz || s->paddr > UINT64_MAX - s->memsz ||
        s->vaddr > UINT64_MAX - s->memsz)
        return elf64_fail(img, ELF64_ERR_SEG_OVERFLOW, 0, s->index, 0);
    if (s->offset + s->filesz > img->size)
        return elf64_fail(img, ELF64_ERR_SEG_TRUNCATED, 0, s->index, 0);
    return ELF64_OK;
}

enum elf64_status elf64_parse(const void *data, size_t size, uint64_t max_span,
                              struct elf64_image *img)
{
    const uint8_t *d = data;

    *img = (struct elf64_image){ .data = d, .size = size, .status = ELF64_OK };
    if (!d || size < ELF64_EHDR_SIZE)
        return elf64_fail(img, ELF64_ERR_TOO_SMALL, size, 0, 0);
    if (d[0] != 0x7f || d[1] != 'E' || d[2] != 'L' || d[3] != 'F')
        return elf64_fail(img, ELF64_ERR_MAGIC, 0, 0, 0);
    if (d[EI_CLASS] != ELFCLASS64)
        return elf64_fail(img, ELF64_ERR_CLASS, d[EI_CLASS], 0, 0);
    if (d[EI_DATA] != ELFDATA2LSB)
        return elf64_fail(img, ELF64_ERR_DATA, d[EI_DATA], 0, 0);
    if (d[EI_VERSION] != EV_CURRENT)
        return elf64_fail(img, ELF64_ERR_VERSION, d[EI_VERSION], 0, 0);
    if (elf64_rd(d + EH_VERSION, 4) != EV_CURRENT)
        return elf64_fail(img, ELF64_ERR_VERSION, elf64_rd(d + EH_VERSION, 4), 0, 0);
    if (elf64_rd(d + EH_TYPE, 2) != ELF64_ET_EXEC)
        return elf64_fail(img, ELF64_ERR_TYPE, elf64_rd(d + EH_TYPE, 2), 0, 0);
    if (elf64_rd(d + EH_MACHINE, 2) != ELF64_EM_X86_64)
        return elf64_fail(img, ELF64_ERR_MACHINE, elf64_rd(d + EH_MACHINE, 2), 0, 0);

    img->entry = elf64_rd(d + EH_ENTRY, 8);
    img->phoff = elf64_rd(d + EH_PHOFF, 8);
    img->phnum = (uint16_t)elf64_rd(d + EH_PHNUM, 2);
    if (img->phnum == 0)
        return elf64_fail(img, ELF64_ERR_NO_PHDRS, 0, 0, 0);
    if (elf64_rd(d + EH_PHENTSIZE, 2) != ELF64_PHDR_SIZE)
        return elf64_fail(img, ELF64_ERR_PHENTSIZE, elf64_rd(d + EH_PHENTSIZE, 2), 0, 0);
    if (img->phnum > ELF64_MAX_PHDRS)
        return elf64_fail(img, ELF64_ERR_TOO_MANY_PHDRS, img->phnum, 0, 0);
    /* The first header that does not fit is the one to name. */
    for (uint16_t i = 0; i < img->phnum; i++) {
        uint64_t end = (uint64_t)(i + 1) * ELF64_PHDR_SIZE;
        if (img->phoff > size || end > size - img->phoff)
            return elf64_fail(img, ELF64_ERR_PHDRS_TRUNCATED, img->phoff, i, 0);
    }

    uint64_t lo = UINT64_MAX, hi = 0;
    for (uint16_t i = 0; i < img->phnum; i++) {
        struct elf64_segment s;
        uint32_t type;
        elf64_read_phdr(img, i, &type, &s);
        if (type != ELF64_PT_LOAD)
            continue;
        enum elf64_status st = elf64_check_load(img, &s);
        if (st != ELF64_OK)
            return st;
        if (s.memsz == 0)
            continue;
        for (uint16_t j = 0; j < i; j++) {
            struct elf64_segment o;
            uint32_t otype;
            elf64_read_phdr(img, j, &otype, &o);
            if (otype != ELF64_PT_LOAD || o.memsz == 0)
                continue;
            if (s.paddr < o.paddr + o.memsz && o.paddr < s.paddr + s.memsz)
                return elf64_fail(img, ELF64_ERR_SEG_OVERLAP, 0, j, i);
        }
        if (s.paddr < lo)
            lo = s.paddr;
        if (s.paddr + s.memsz > hi)
            hi = s.paddr + s.memsz;
        img->load_count++;
    }
    if (img->load_count == 0)
        return elf64_fail(img, ELF64_ERR_NO_LOAD, 0, 0, 0);
    if (hi - lo > max_span)
        return elf64_fail(img, ELF64_ERR_SPAN, hi - lo, 0, 0);
    img->paddr_lo = lo;
    img->paddr_hi = hi;
    return ELF64_OK;
}

bool elf64_next_load(const struct elf64_image *img, unsigned *cursor,
                     struct elf64_segment *seg)
{
    if (img->status != ELF64_OK)
        return false;
    while (*cursor < img->phnum) {
        uint32_t type;
        elf64_read_phdr(img, (uint16_t)(*cursor)++, &type, seg);
        if (type == ELF64_PT_LOAD && seg->memsz > 0)
            return true;
    }
    return false;
}

bool elf64_find_vaddr(const struct elf64_image *img, uint64_t vaddr,
                      struct elf64_segment *seg)
{
    unsigned cursor = 0;
    while (elf64_next_load(img, &cursor, seg))
        if (vaddr >= seg->vaddr && vaddr - seg->vaddr < seg->memsz)
            return true;
    return false;
}

const char *elf64_strerror(enum elf64_status s)
{
    switch (s) {
    case ELF64_OK:                  return "valid";
    case ELF64_ERR_TOO_SMALL:       return "shorter than an ELF header";
    case ELF64_ERR_MAGIC:           return "not an ELF file (bad magic)";
    case ELF64_ERR_CLASS:           return "not a 64-bit ELF file";
    case ELF64_ERR_DATA:            return "not a little-endian ELF file";
    case ELF64_ERR_VERSION:         return "unknown ELF version";
    case ELF64_ERR_TYPE:            return "not an ELF executable";
    case ELF64_ERR_MACHINE:         return "not an x86_64 ELF file";
    case ELF64_ERR_PHENTSIZE:       return "bad program header entry size";
    case ELF64_ERR_NO_PHDRS:        return "no program headers";
    case ELF64_ERR_TOO_MANY_PHDRS:  return "too many program headers";
    case ELF64_ERR_PHDRS_TRUNCATED: return "program headers run past the end of the file";
    case ELF64_ERR_SEG_TRUNCATED:   return "a segment runs past the end of the file";
    case ELF64_ERR_SEG_FILESZ:      return "a segment has more file bytes than memory bytes";
    case ELF64_ERR_SEG_OVERFLOW:    return "a segment's offset or address overflows";
    case ELF64_ERR_SEG_OVERLAP:     return "two segments overlap";
    case ELF64_ERR_NO_LOAD:         return "no loadable segment";
    case ELF64_ERR_SPAN:            return "segments span too much memory";
    }
    return "unknown ELF error";
}

/* A bounded string builder: no libc in the loader or the core. */
struct elf64_msg {
    char  *buf;
    size_t len, pos;
};

static void msg_str(struct elf64_msg *m, const char *s)
{
    while (*s && m->pos + 1 < m->len)
        m->buf[m->pos++] = *s++;
    m->buf[m->pos] = '\0';
}

static void msg_u64(struct elf64_msg *m, uint64_t v)
{
    char tmp[21];
    unsigned n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    char out[21];
    for (unsigned i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    msg_str(m, out);
}

size_t elf64_format_error(const struct elf64_image *img, const char *name,
                          char *buf, size_t len)
{
    struct elf64_msg m = { buf, len, 0 };
    if (!buf || len == 0)
        return 0;
    buf[0] = '\0';
    msg_str(&m, name);
    switch (img->status) {
    case ELF64_OK:
        msg_str(&m, " is a valid ELF64 executable");
        break;
    case ELF64_ERR_TOO_SMALL:
        msg_str(&m, " is truncated: ");
        msg_u64(&m, img->err_value);
        msg_str(&m, " bytes, shorter than an ELF header");
        break;
    case ELF64_ERR_MAGIC:
        msg_str(&m, " is not an ELF file (bad magic)");
        break;
    case ELF64_ERR_CLASS:
        msg_str(&m, " is not a 64-bit ELF file (class ");
        msg_u64(&m, img->err_value);
        msg_str(&m, ", expected 2)");
        break;
    case ELF64_ERR_DATA:
        msg_str(&m, " is not a little-endian ELF file (data encoding ");
        msg_u64(&m, img->err_value);
        msg_str(&m, ", expected 1)");
        break;
    case ELF64_ERR_VERSION:
        msg_str(&m, " has ELF version ");
        msg_u64(&m, img->err_value);
        msg_str(&m, ", expected 1");
        break;
    case ELF64_ERR_TYPE:
        msg_str(&m, " is not an ELF executable (type ");
        msg_u64(&m, img->err_value);
        msg_str(&m, ", expected 2 = EXEC)");
        break;
    case ELF64_ERR_MACHINE:
        msg_str(&m, " is not an x86_64 ELF file (machine ");
        msg_u64(&m, img->err_value);
        msg_str(&m, ", expected 62)");
        break;
    case ELF64_ERR_PHENTSIZE:
        msg_str(&m, " has program header entries of ");
        msg_u64(&m, img->err_value);
        msg_str(&m, " bytes, expected 56");
        break;
    case ELF64_ERR_NO_PHDRS:
        msg_str(&m, " has no program headers");
        break;
    case ELF64_ERR_TOO_MANY_PHDRS:
        msg_str(&m, " has ");
        msg_u64(&m, img->err_value);
        msg_str(&m, " program headers, more than the 256 allowed");
        break;
    case ELF64_ERR_PHDRS_TRUNCATED:
        msg_str(&m, " is truncated: program header ");
        msg_u64(&m, img->err_index);
        msg_str(&m, " runs past the end of the file");
        break;
    case ELF64_ERR_SEG_TRUNCATED:
        msg_str(&m, " is truncated: the data of program header ");
        msg_u64(&m, img->err_index);
        msg_str(&m, " runs past the end of the file");
        break;
    case ELF64_ERR_SEG_FILESZ:
        msg_str(&m, " is corrupt: program header ");
        msg_u64(&m, img->err_index);
        msg_str(&m, " has more file bytes than memory bytes");
        break;
    case ELF64_ERR_SEG_OVERFLOW:
        msg_str(&m, " is corrupt: the offset or address of program header ");
        msg_u64(&m, img->err_index);
        msg_str(&m, " overflows");
        break;
    case ELF64_ERR_SEG_OVERLAP:
        msg_str(&m, " is corrupt: program headers ");
        msg_u64(&m, img->err_index);
        msg_str(&m, " and ");
        msg_u64(&m, img->err_index2);
        msg_str(&m, " load at overlapping physical addresses");
        break;
    case ELF64_ERR_NO_LOAD:
        msg_str(&m, " has no loadable segment");
        break;
    case ELF64_ERR_SPAN:
        msg_str(&m, " is too large: its segments span ");
        msg_u64(&m, img->err_value);
        msg_str(&m, " bytes of memory");
        break;
    default:
        msg_str(&m, ": ");
        msg_str(&m, elf64_strerror(img->status));
        break;
    }
    return m.pos;
}
