; World switch into an SVM guest and back (AMD APM Vol. 2 §15.5 VMRUN, §15.6 #VMEXIT,
; §15.5.2 VMSAVE/VMLOAD).  VMRUN switches only part of the state: guest RAX and RSP
; live in the VMCB; the other general registers in the first 16 qwords of struct
; hvm_vcpu (svm_vcpu.c), in encoding order; FS, GS, TR, LDTR, KERNEL_GS_BASE and the
; SYSCALL/SYSENTER MSRs move with VMLOAD/VMSAVE.

%define GPR(n) [rdi + (n) * 8]

section .text
bits 64

; void svm_enter(struct hvm_vcpu *v, uint64_t vmcb_pa, uint64_t host_area_pa)
; Called with interrupts off; returns with interrupts off and GIF set.
global svm_enter
svm_enter:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    push rdi                        ; [rsp+16]: the vCPU
    push rdx                        ; [rsp+8]:  host area
    push rsi                        ; [rsp]:    VMCB
    ; GIF=0 holds off interrupts and NMIs while the host's GS base (this_cpu) is
    ; replaced by the guest's.  STI with GIF=0 takes nothing: it only makes the host
    ; RFLAGS.IF that VMRUN saves 1, which with V_INTR_MASKING is what lets physical
    ; interrupts reach the INTR intercept while the guest runs (§15.21.1).
    clgi
    sti
    mov rax, rdx
    vmsave
    mov rax, rsi
    vmload
    mov rcx, GPR(1)
    mov rdx, GPR(2)
    mov rbx, GPR(3)
    mov rbp, GPR(5)
    mov rsi, GPR(6)
    mov r8,  GPR(8)
    mov r9,  GPR(9)
    mov r10, GPR(10)
    mov r11, GPR(11)
    mov r12, GPR(12)
    mov r13, GPR(13)
    mov r14, GPR(14)
    mov r15, GPR(15)
    mov rdi, GPR(7)
    vmrun
    ; #VMEXIT: RSP, RAX (the VMCB address) and RFLAGS are the host's again, GIF = 0.
    push rdi                        ; guest rdi
    mov rdi, [rsp + 24]             ; the vCPU
    mov GPR(1), rcx
    mov GPR(2), rdx
    mov GPR(3), rbx
    mov GPR(5), rbp
    mov GPR(6), rsi
    mov GPR(8), r8
    mov GPR(9), r9
    mov GPR(10), r10
    mov GPR(11), r11
    mov GPR(12), r12
    mov GPR(13), r13
    mov GPR(14), r14
    mov GPR(15), r15
    pop rcx
    mov GPR(7), rcx
    mov rax, [rsp]
    vmsave
    mov rax, [rsp + 8]
    vmload
    ; A host interrupt that made the guest exit stays pending for the core's run
    ; loop (IF=0); a host NMI is taken right at STGI, on host state.
    cli
    stgi
    add rsp, 16
    pop rdi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret
