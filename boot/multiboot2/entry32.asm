; Multiboot2 entry: GRUB leaves us in 32-bit protected mode, paging off, eax = magic,
; ebx = info (Multiboot2 spec §3.3).  Build page tables that identity-map the first
; 4 GiB and map the kernel's link addresses, enter long mode (SDM Vol. 3A §10.8.5),
; and jump to the common 64-bit entry with the hand-off in rdi/rsi/rdx
; (boot/bootinfo.h).  Everything here is linked at its load address.

KERNEL_VMA equ 0xFFFFFFFF80000000
KERNEL_LMA equ 0x200000

extern kernel_entry64

section .boot.text
bits 32
global mb2_entry32
mb2_entry32:
    cli
    cld
    mov esp, mb2_stack_top
    mov edi, eax                    ; keep magic and info across the checks
    mov esi, ebx

    ; Long mode needs CPUID 0x80000001.EDX[29].
    mov eax, 0x80000000
    cpuid
    cmp eax, 0x80000001
    jb .no_long_mode
    mov eax, 0x80000001
    cpuid
    test edx, 1 << 29
    jz .no_long_mode

    ; PML4[0] -> pdpt_low (identity, 4 GiB); PML4[511] -> pdpt_high, whose entry 510
    ; maps KERNEL_VMA .. +1 GiB onto physical 0 .. 1 GiB.
    mov eax, mb2_pdpt_low
    or eax, 3
    mov [mb2_pml4], eax
    mov eax, mb2_pdpt_high
    or eax, 3
    mov [mb2_pml4 + 511 * 8], eax
    mov eax, mb2_pd
    or eax, 3
    mov [mb2_pdpt_high + 510 * 8], eax
    xor ecx, ecx
.fill_pdpt:
    mov eax, ecx
    shl eax, 12
    add eax, mb2_pd
    or eax, 3
    mov [mb2_pdpt_low + ecx * 8], eax
    inc ecx
    cmp ecx, 4
    jne .fill_pdpt
    ; 2048 2 MiB pages: entry i maps i * 2 MiB (present, writable, PS).
    xor ecx, ecx
.fill_pd:
    mov eax, ecx
    shl eax, 21
    or eax, 0x83
    mov [mb2_pd + ecx * 8], eax
    mov eax, ecx
    shr eax, 11                     ; high dword of i * 2 MiB
    mov [mb2_pd + ecx * 8 + 4], eax
    inc ecx
    cmp ecx, 2048
    jne .fill_pd

    mov eax, mb2_pml4
    mov cr3, eax
    mov eax, cr4
    or eax, 1 << 5                  ; PAE
    mov cr4, eax
    mov ecx, 0xC0000080             ; EFER
    rdmsr
    or eax, 1 << 8                  ; LME
    wrmsr
    mov eax, cr0
    or eax, (1 << 31) | (1 << 16) | 1 ; PG, WP, PE
    mov cr0, eax
    lgdt [mb2_gdt_ptr]
    jmp 0x08:.long_mode

.no_long_mode:
    ; No 64-bit mode: say so on COM1 and the VGA text screen, then stop.
    mov ebx, mb2_msg_no_lm
    mov edx, 0xB8000
.putc:
    mov al, [ebx]
    test al, al
    jz .halt
    mov ah, 0x4F
    mov [edx], ax
    add edx, 2
    push edx
    mov dx, 0x3F8
    out dx, al
    pop edx
    inc ebx
    jmp .putc
.halt:
    hlt
    jmp .halt

bits 64
.long_mode:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor ax, ax
    mov fs, ax
    mov gs, ax
    mov edi, edi                    ; zero-extend magic
    mov esi, esi                    ; and the info pointer
    mov edx, KERNEL_LMA             ; GRUB loads the image at its link address
    mov rax, kernel_entry64
    jmp rax

section .boot.data
align 8
mb2_gdt:
    dq 0
    dq 0x00AF9A000000FFFF           ; 0x08: 64-bit code
    dq 0x00CF92000000FFFF           ; 0x10: data
mb2_gdt_end:
mb2_gdt_ptr:
    dw mb2_gdt_end - mb2_gdt - 1
    dd mb2_gdt
mb2_msg_no_lm:
    db "plinth: this CPU has no 64-bit long mode; plinth needs an x86_64 CPU.", 13, 10, 0

align 4096
mb2_pml4:      times 4096 db 0
mb2_pdpt_low:  times 4096 db 0
mb2_pdpt_high: times 4096 db 0
mb2_pd:        times 4 * 4096 db 0
mb2_stack:     times 4096 db 0
mb2_stack_top:
