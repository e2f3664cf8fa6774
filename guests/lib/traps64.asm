; The 64-bit guests' interrupt stubs for all 256 vectors (SDM Vol. 3A §6.14.2: in
; IA-32e mode the CPU always pushes SS:RSP, aligned to 16 bytes, then RFLAGS, CS, RIP
; and, for the vectors of Table 6-1 that have one, an error code).  Each stub evens
; the frame out with a zero error code where the CPU pushes none, pushes its vector,
; saves the general registers and calls trap_dispatch(frame).
bits 64
default abs
section .text
extern trap_dispatch
global trap_stubs, trap_iret

%assign i 0
%rep 256
stub%[i]:
%if !((i = 8) || (i >= 10 && i <= 14) || (i = 17) || (i = 21) || (i = 29) || (i = 30))
    push 0
%endif
    push i
    jmp trap_common
%assign i i + 1
%endrep

trap_common:
    push rax
    push rcx
    push rdx
    push rbx
    push rbp
    push rsi
    push rdi
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    cld
    mov rdi, rsp
    ; The frame is 16-byte aligned after the CPU's push; 15 registers and the two
    ; stub words leave rsp 8 off: realign for the C code (SysV ABI).
    mov rbx, rsp
    and rsp, -16
    call trap_dispatch
    mov rsp, rbx
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rdi
    pop rsi
    pop rbp
    pop rbx
    pop rdx
    pop rcx
    pop rax
    add rsp, 16
trap_iret:                          ; every handler returns here (tests name it)
    iretq

section .rodata
align 8
trap_stubs:
%assign i 0
%rep 256
    dq stub%[i]
%assign i i + 1
%endrep
