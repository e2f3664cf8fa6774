; Entry of the 64-bit C test guests: a Multiboot 1 kernel like the others, entered in
; 32-bit protected mode (Multiboot §3.2), which switches to IA-32e mode itself (SDM
; Vol. 3A §10.8.5: PAE, CR3, EFER.LME, then CR0.PG) on an identity map of the first
; 4 GiB in 2 MiB pages, loads its own GDT with a 64-bit code segment and calls
; guest_entry(magic, info) with the values Multiboot left in EAX and EBX.
bits 32

MB1_MAGIC equ 0x1BADB002
MB1_FLAGS equ 0x00000003          ; page-aligned modules, memory information wanted
MSR_EFER  equ 0xc0000080

section .multiboot progbits alloc noexec nowrite align=4
    dd MB1_MAGIC, MB1_FLAGS, -(MB1_MAGIC + MB1_FLAGS)

section .text
global _start
extern guest_entry
_start:
    cli
    mov esp, stack_top
    mov edi, eax                  ; magic and info survive in edi/esi (SysV arguments)
    mov esi, ebx
    ; PD entries: 2 MiB pages, present + writable + PS (Table 4-17).
    xor ecx, ecx
.pd:
    mov eax, ecx
    shl eax, 21
    or eax, 0x83
    mov [pd + ecx * 8], eax
    mov eax, ecx
    shr eax, 11
    mov [pd + ecx * 8 + 4], eax
    inc ecx
    cmp ecx, 2048
    jb .pd
    xor ecx, ecx
.pdpt:
    mov eax, ecx
    shl eax, 12
    add eax, pd
    or eax, 3
    mov [pdpt + ecx * 8], eax
    inc ecx
    cmp ecx, 4
    jb .pdpt
    mov eax, pdpt
    or eax, 3
    mov [pml4], eax
    mov eax, pml4
    mov cr3, eax
    mov eax, cr4
    or eax, 1 << 5                ; PAE
    mov cr4, eax
    mov ecx, MSR_EFER
    rdmsr
    or eax, 1 << 8                ; LME
    wrmsr
    mov eax, cr0
    or eax, (1 << 31) | 1         ; PG, PE
    mov cr0, eax
    lgdt [gdt_desc]
    jmp 0x08:long_entry

bits 64
long_entry:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov fs, ax
    mov gs, ax
    mov esp, stack_top
    mov edi, edi                  ; upper halves are undefined after the mode switch
    mov esi, esi
    call guest_entry
.halt:
    cli
    hlt
    jmp .halt

section .rodata
align 8
; null, 64-bit code (0x08, L=1), flat data (0x10), flat 32-bit code (0x18): SDM Vol.
; 3A §3.4.5, §5.2.1.
global gdt64
gdt64:
    dq 0
    dq 0x00af9a000000ffff
    dq 0x00cf92000000ffff
    dq 0x00cf9a000000ffff
gdt_end:
gdt_desc:
    dw gdt_end - gdt64 - 1
    dd gdt64

section .bss
align 4096
pml4:
    resb 4096
pdpt:
    resb 4096
pd:
    resb 4 * 4096
align 16
stack:
    resb 16384
stack_top:
