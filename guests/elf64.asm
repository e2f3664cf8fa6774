; elf64: an ELF64 kernel, which plinth's elf loader enters in 64-bit mode on its own
; identity map of the first 4 GiB (vmm/loader/loader.h).  Checks long mode is active
; with paging, and walks the page tables at CR3 (SDM Vol. 3A §5.5.4) to check that
; virtual addresses across the 4 GiB translate to themselves.
bits 64
default abs

COM1     equ 0x3f8
MSR_EFER equ 0xc0000080

%macro CHECK_FAIL 1   ; prints "FAIL <name>: ..." (string %1) if ZF is clear
    jz %%ok
    mov esi, %1
    call fail
%%ok:
%endmacro

section .text
global _start
_start:
    cli
    mov esp, stack_top
    call serial_init

    mov ecx, MSR_EFER
    rdmsr
    test eax, 1 << 10                ; LMA
    setz al
    test al, al
    CHECK_FAIL f_lma
    mov rax, cr0
    bt eax, 31                       ; PG
    setnc al
    test al, al
    CHECK_FAIL f_pg
    mov rax, cr4
    bt eax, 5                        ; PAE
    setnc al
    test al, al
    CHECK_FAIL f_pae
    cmp byte [failed], 0
    jne .skip1
    mov esi, p_mode
    call puts
.skip1:

    mov byte [failed], 0
    mov rbx, addresses
.next:
    mov rdi, [rbx]
    cmp rdi, -1
    je .walked
    call walk
    cmp rax, rdi
    CHECK_FAIL f_ident
    add rbx, 8
    jmp .next
.walked:
    cmp byte [failed], 0
    jne .skip2
    mov esi, p_ident
    call puts
.skip2:
    ; The identity map reaches RAM: a write at 8 MiB reads back.
    mov dword [0x800000], 0x64646464
    cmp dword [0x800000], 0x64646464
    CHECK_FAIL f_ram
    jnz .done
    mov esi, p_ram
    call puts
.done:
    mov esi, s_done
    call puts
.halt:
    cli
    hlt
    jmp .halt

; rdi = virtual address; returns rax = physical address, or -1 if not mapped.
walk:
    mov rdx, 0x000ffffffffff000
    mov rax, cr3
    and rax, rdx
    mov rcx, rdi
    shr rcx, 39
    and ecx, 0x1ff
    mov rax, [rax + rcx * 8]         ; PML4E
    test al, 1
    jz .np
    and rax, rdx
    mov rcx, rdi
    shr rcx, 30
    and ecx, 0x1ff
    mov rax, [rax + rcx * 8]         ; PDPTE
    test al, 1
    jz .np
    test al, 0x80
    jnz .page1g
    and rax, rdx
    mov rcx, rdi
    shr rcx, 21
    and ecx, 0x1ff
    mov rax, [rax + rcx * 8]         ; PDE
    test al, 1
    jz .np
    test al, 0x80
    jnz .page2m
    and rax, rdx
    mov rcx, rdi
    shr rcx, 12
    and ecx, 0x1ff
    mov rax, [rax + rcx * 8]         ; PTE
    test al, 1
    jz .np
    and rax, rdx
    mov rcx, rdi
    and ecx, 0xfff
    add rax, rcx
    ret
.page2m:
    mov rcx, 0x000fffffffe00000
    and rax, rcx
    mov rcx, rdi
    and ecx, 0x1fffff
    add rax, rcx
    ret
.page1g:
    mov rcx, 0x000fffffc0000000
    and rax, rcx
    mov rcx, rdi
    and ecx, 0x3fffffff
    add rax, rcx
    ret
.np:
    mov rax, -1
    ret

; esi = message after "FAIL "
fail:
    push rsi
    mov byte [failed], 1
    mov esi, s_fail
    call puts
    pop rsi
    jmp puts

%include "lib/serial.inc"

section .rodata
align 8
; Below, inside and at the very end of the 4 GiB the loader promises, and in RAM.
addresses: dq 0x0, 0x1000, 0x100000, 0x7ff000, 0x800123, 0xfff000, 0x40000000, 0xbfe01008, 0xfffff000, -1
s_fail:  db "FAIL ", 0
s_done:  db "DONE elf64", 10, 0
p_mode:  db "PASS elf64-long-mode-paging", 10, 0
p_ident: db "PASS elf64-identity-map-4g", 10, 0
p_ram:   db "PASS elf64-ram-readwrite", 10, 0
f_lma:   db "elf64-long-mode-paging: EFER.LMA clear at entry", 10, 0
f_pg:    db "elf64-long-mode-paging: CR0.PG clear at entry", 10, 0
f_pae:   db "elf64-long-mode-paging: CR4.PAE clear at entry", 10, 0
f_ident: db "elf64-identity-map-4g: an address below 4 GiB does not translate to itself", 10, 0
f_ram:   db "elf64-ram-readwrite: a write at 8 MiB did not read back", 10, 0

section .bss
failed: resb 1
alignb 16
stack:  resb 4096
stack_top:
