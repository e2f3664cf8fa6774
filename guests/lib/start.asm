; Entry of every C test guest: a Multiboot 1 header (spec 0.6.96 §3.1), our own GDT
; (Multiboot §3.2 leaves GDTR undefined, and IRET reloads CS from it), a stack, then
; guest_entry(magic, info).
bits 32

MB1_MAGIC equ 0x1BADB002
MB1_FLAGS equ 0x00000003          ; page-aligned modules, memory information wanted

section .multiboot progbits alloc noexec nowrite align=4
    dd MB1_MAGIC, MB1_FLAGS, -(MB1_MAGIC + MB1_FLAGS)

section .text
global _start
extern guest_entry
_start:
    cli
    mov esp, stack_top
    lgdt [gdt_desc]
    jmp 0x08:.flat
.flat:
    mov cx, 0x10
    mov ds, cx
    mov es, cx
    mov fs, cx
    mov gs, cx
    mov ss, cx
    push ebx
    push eax
    call guest_entry
.halt:
    cli
    hlt
    jmp .halt

section .rodata
align 8
; null, flat 32-bit code (0x08), flat data (0x10): SDM Vol. 3A §3.4.5.
gdt:
    dq 0
    dq 0x00cf9a000000ffff
    dq 0x00cf92000000ffff
gdt_end:
gdt_desc:
    dw gdt_end - gdt - 1
    dd gdt

section .bss
align 16
stack:
    resb 16384
stack_top:
