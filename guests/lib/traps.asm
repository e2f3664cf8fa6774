; Exception stubs for vectors 0-31: each pushes a zero where the CPU pushes no error
; code (SDM Vol. 3A §6.13, Table 6-1: vectors 8, 10-14, 17, 21, 29, 30 push one), then
; its vector, and calls trap_dispatch(frame).
bits 32
section .text
extern trap_dispatch
global trap_stubs

%assign i 0
%rep 32
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
    iret

section .rodata
align 4
trap_stubs:
%assign i 0
%rep 32
    dd stub%[i]
%assign i i + 1
%endrep
