; World switch into a VMX guest and back (SDM Vol. 3C §31.3 VMLAUNCH/VMRESUME,
; §28.5 host state on VM exit).  The guest's general registers live in the first
; 16 qwords of struct hvm_vcpu (vmx_vcpu.c), in encoding order; RSP is the VMCS's.

VMCS_HOST_RSP equ 0x6c14

%define GPR(n) [rdi + (n) * 8]

section .text
bits 64

; int vmx_enter(struct hvm_vcpu *v, int launched)
;   0: the guest ran and exited (details in the VMCS)
;   1: VMfailInvalid (no current VMCS)    2: VMfailValid (VM-instruction error field)
global vmx_enter
vmx_enter:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    push rdi                        ; the vCPU, found again on exit at [HOST_RSP]
    mov rax, VMCS_HOST_RSP
    vmwrite rax, rsp
    cmp esi, 0                      ; flags survive the loads below (mov sets none)
    mov rax, GPR(0)
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
    jne .resume
    vmlaunch
    jmp .failed
.resume:
    vmresume
.failed:
    ; Still on our stack: the entry never happened.  CF=1 invalid, ZF=1 valid.
    mov eax, 1
    jc .out
    mov eax, 2
.out:
    pop rdi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret

; HOST_RIP: the CPU arrives here on every VM exit with rsp = HOST_RSP.
global vmx_exit_entry
vmx_exit_entry:
    push rdi                        ; guest rdi
    mov rdi, [rsp + 8]              ; the vCPU
    mov GPR(0), rax
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
    pop rax
    mov GPR(7), rax
    pop rdi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    xor eax, eax
    ret
