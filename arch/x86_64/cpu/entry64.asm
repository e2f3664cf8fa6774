; The core's one 64-bit entry, shared by both boot paths (contract in boot/bootinfo.h).
extern kmain
extern __bss_start
extern __bss_end

section .plinth_header
align 8
global plinth_header
plinth_header:
    dq 0x5244484e544e4c50           ; PLINTH_HEADER_MAGIC
    dq kernel_entry64
    dq 0xFFFFFFFF80000000
    dq 0x200000

section .text
bits 64
global kernel_entry64
kernel_entry64:
    cli
    cld
    lea rsp, [rel boot_stack_top]
    xor ebp, ebp
    push rbp                        ; terminates stack traces
    push rbp
    call kmain
.hang:
    cli
    hlt
    jmp .hang

section .bss
align 16
global boot_stack_bottom
boot_stack_bottom:
    resb 16384
global boot_stack_top
boot_stack_top:

section .text
; void call_on_stack(uint64_t stack_top, void (*fn)(void)) -- never returns.
; Moves the caller onto a new stack (a guard-paged one from stack_alloc) for good.
global call_on_stack
call_on_stack:
    mov rsp, rdi
    xor ebp, ebp
    push rbp                        ; two zero words: the trace ends here, and fn
    push rbp                        ; starts with the ABI's 16-byte alignment
    call rsi
.hang:
    cli
    hlt
    jmp .hang
