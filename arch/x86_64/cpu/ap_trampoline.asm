; Start-up code of the application processors (APs).  A Startup IPI starts an AP in
; real mode at CS:IP = vector*256:0 (SDM Vol. 3A §9.4.4.1, §12.6.1), so kernel/smp.c
; copies this block to a page below 1 MiB and patches the fields of ap_trampoline_data
; first.  Code and data are addressed relative to the page (ebx = its physical base):
; the block is assembled into .rodata and never runs where it is linked.
;
; Real mode -> protected mode -> long mode (SDM Vol. 3A §10.8.5) on a temporary
; page table that identity-maps the first 2 MiB and is itself below 4 GiB (a CR3
; loaded in 32-bit mode has 32 bits); then the kernel's own CR3, which identity-maps
; this page, and a call of the C entry on the AP's own stack.

TR_CODE32 equ 0x08
TR_DATA   equ 0x10
TR_CODE64 equ 0x18

CR0_PE    equ 1 << 0
CR4_PAE   equ 1 << 5
MSR_EFER  equ 0xC0000080

; How far an AP got, in ap_trampoline_data.stage: the BSP names it when an AP
; fails to report in.
STAGE_REAL  equ 1
STAGE_PROT  equ 2
STAGE_LONG  equ 3

section .ap_trampoline progbits alloc noexec nowrite align=16

bits 16
global ap_trampoline
ap_trampoline:
    cli
    cld
    xor ebx, ebx
    mov bx, cs
    mov ds, bx
    shl ebx, 4                      ; physical base of this page
    mov dword [tr_data.stage - ap_trampoline], STAGE_REAL
    o32 lgdt [tr_data.gdt_limit - ap_trampoline]
    mov eax, cr0
    or eax, CR0_PE
    mov cr0, eax
    o32 jmp far [tr_data.far32 - ap_trampoline]

bits 32
tr_protected:
    mov ax, TR_DATA
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov fs, ax
    mov gs, ax
    mov dword [ebx + tr_data.stage - ap_trampoline], STAGE_PROT
    mov eax, cr4
    or eax, CR4_PAE
    mov cr4, eax
    mov eax, [ebx + tr_data.boot_cr3 - ap_trampoline]
    mov cr3, eax
    ; The boot CPU's EFER: LME, and NXE, without which the kernel's NX page table
    ; entries would be reserved-bit faults.
    mov ecx, MSR_EFER
    mov eax, [ebx + tr_data.efer - ap_trampoline]
    mov edx, [ebx + tr_data.efer + 4 - ap_trampoline]
    wrmsr
    mov eax, [ebx + tr_data.cr0 - ap_trampoline]
    mov cr0, eax                    ; paging on: IA-32e compatibility mode
    jmp far [ebx + tr_data.far64 - ap_trampoline]

bits 64
tr_long:
    mov ebx, ebx                    ; upper halves are undefined after compatibility mode
    mov dword [rbx + tr_data.stage - ap_trampoline], STAGE_LONG
    mov rsp, [rbx + tr_data.stack - ap_trampoline]
    mov edi, [rbx + tr_data.cpu_index - ap_trampoline]
    mov rax, [rbx + tr_data.entry - ap_trampoline]
    mov rcx, [rbx + tr_data.cr4 - ap_trampoline]
    mov rdx, [rbx + tr_data.cr3 - ap_trampoline]
    ; From here the page is read through the kernel's tables, which may map it
    ; read-only: everything needed is in registers already.
    mov cr3, rdx
    mov cr4, rcx
    xor ebp, ebp
    push rbp                        ; terminates stack traces, as kernel_entry64 does
    push rbp
    call rax
.hang:
    cli
    hlt
    jmp .hang

; The BSP adds the page's physical base to far32, gdt_base and far64, and fills the
; rest; the layout is struct ap_trampoline_data in kernel/smp.c.
align 16
tr_gdt:
    dq 0
    dq 0x00CF9A000000FFFF           ; 0x08: 32-bit code, flat
    dq 0x00CF92000000FFFF           ; 0x10: data, flat
    dq 0x00AF9A000000FFFF           ; 0x18: 64-bit code
tr_gdt_end:

align 8
global ap_trampoline_data
ap_trampoline_data:
tr_data:
.far32:     dd tr_protected - ap_trampoline     ; 0
            dw TR_CODE32                        ; 4
.gdt_limit: dw tr_gdt_end - tr_gdt - 1          ; 6
.gdt_base:  dd tr_gdt - ap_trampoline           ; 8
.far64:     dd tr_long - ap_trampoline          ; 12
            dw TR_CODE64                        ; 16
            dw 0                                ; 18
.boot_cr3:  dd 0                                ; 20
.efer:      dq 0                                ; 24
.cr0:       dq 0                                ; 32
.cr4:       dq 0                                ; 40
.cr3:       dq 0                                ; 48
.stack:     dq 0                                ; 56
.entry:     dq 0                                ; 64
.cpu_index: dd 0                                ; 72
.stage:     dd 0                                ; 76
tr_data_end:
; Fails to assemble (negative TIMES) if the layout above grew past struct ap_trampoline_data.
    times 80 - (tr_data_end - tr_data) db 0
