; Entry stubs for all 256 vectors.  Each stub makes the stack uniform (an error code,
; 0 where the CPU pushes none, then the vector) and joins isr_common, which saves the
; general registers as struct trap_frame (trap.h) and calls trap_dispatch.
bits 64
extern trap_dispatch

section .text

; Vectors for which the CPU pushes an error code: SDM Vol. 3A Table 6-1 (#DF #TS #NP
; #SS #GP #PF #AC #CP) and APM Vol. 2 8.4 (#VC #SX).
%assign vec 0
%rep 256
align 16
isr_stub_ %+ vec:
%if vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21 || vec == 29 || vec == 30
%else
    push qword 0
%endif
    push qword vec
    jmp isr_common
%assign vec vec + 1
%endrep

; The CPU aligned rsp to 16 before pushing its 5-word frame (SDM Vol. 3A 6.14.2); with
; the 2 words above and the 15 registers below, rsp is 16-aligned again at the call,
; as the SysV ABI wants.  Interrupt gates cleared IF; all vectors run in ring 0, so
; there is no swapgs.
align 16
global isr_common
isr_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
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
    call trap_dispatch
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16                     ; vector and error code
    iretq

; int trap_safe_read_u64(uint64_t addr, uint64_t *out): the load is the first
; instruction, so trap_dispatch recognises a fault on it by rip == trap_safe_read_u64
; and resumes at trap_safe_read_fixup instead of reporting it.
align 16
global trap_safe_read_u64
global trap_safe_read_fixup
trap_safe_read_u64:
    mov rax, [rdi]
    mov [rsi], rax
    xor eax, eax
    ret
trap_safe_read_fixup:
    mov eax, -1
    ret

section .rodata
align 8
global isr_stub_table
isr_stub_table:
%assign vec 0
%rep 256
    dq isr_stub_ %+ vec
%assign vec vec + 1
%endrep
