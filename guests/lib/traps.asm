; Interrupt stubs for all 256 vectors: each pushes a zero where the CPU pushes no error
; code (SDM Vol. 3A §6.13, Table 6-1: vectors 8, 10-14, 17, 21, 29, 30 push one), then
; its vector, and calls trap_dispatch(frame).  Vectors 32-255 never get an error code
; from the CPU (external and software interrupts).
bits 32
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
    pusha
    cld
    push esp
    call trap_dispatch
    add esp, 4
    popa
    add esp, 8
trap_iret:                          ; every handler returns here (tests name it)
    iret

section .rodata
align 4
trap_stubs:
%assign i 0
%rep 256
    dd stub%[i]
%assign i i + 1
%endrep
