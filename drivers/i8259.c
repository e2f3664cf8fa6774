#include "drivers/i8259.h"
#include "arch/x86_64/cpu/cpu.h"

/* Ports and initialization words: 8259A data sheet, "Initialization Command Words". */
#define PIC1_CMD  0x20
#define PIC1_DATA 0x21
#define PIC2_CMD  0xa0
#define PIC2_DATA 0xa1
#define ICW1_INIT_ICW4 0x11   /* edge triggered, cascade, ICW4 follows */
#define ICW4_8086      0x01

static void io_delay(void)
{
    outb(0x80, 0);   /* the POST port: a write there takes about a microsecond */
}

void i8259_disable(void)
{
    outb(PIC1_CMD, ICW1_INIT_ICW4);  io_delay();
    outb(PIC2_CMD, ICW1_INIT_ICW4);  io_delay();
    outb(PIC1_DATA, I8259_VECTOR_BASE);      io_delay();  /* ICW2: vector base */
    outb(PIC2_DATA, I8259_VECTOR_BASE + 8);  io_delay();
    outb(PIC1_DATA, 1u << 2);        io_delay();  /* ICW3: slave on IRQ 2 */
    outb(PIC2_DATA, 2);              io_delay();  /* ICW3: slave identity */
    outb(PIC1_DATA, ICW4_8086);      io_delay();
    outb(PIC2_DATA, ICW4_8086);      io_delay();
    outb(PIC1_DATA, 0xff);
    outb(PIC2_DATA, 0xff);
}
