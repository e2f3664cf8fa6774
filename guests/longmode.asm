; longmode: a Multiboot 1 kernel that builds its own 4-level page tables and enters
; 64-bit mode itself (SDM Vol. 3A §10.8.5), then checks that it runs 64-bit code,
; that EFER.LMA is set, that its own (non-identity) mappings translate, and that an
; exception is delivered through a 64-bit IDT.
bits 32

MB1_MAGIC      equ 0x1BADB002
MB1_FLAGS      equ 0x00000003
MB1_BOOT_MAGIC equ 0x2BADB002
COM1           equ 0x3f8
MSR_EFER       equ 0xc0000080
ALIAS_1G       equ 0x40000000       ; mapped by a 4 KiB page to alias_page
ALIAS_512G     equ 0x8000000000     ; PML4 entry 1: the same PDPT as entry 0

section .multiboot progbits alloc noexec nowrite align=4
    dd MB1_MAGIC, MB1_FLAGS, -(MB1_MAGIC + MB1_FLAGS)

%macro PUTS 0
.next:
    lodsb
    test al, al
    jz .end
    mov ah, al
    mov dx, COM1 + 5
.wait:
    in al, dx
    test al, 0x20
    jz .wait
    mov dx, COM1
    mov al, ah
    out dx, al
    jmp .next
.end:
    ret
%endmacro

section .text
global _start
_start:
    cli
    mov ebp, eax
    mov esp, stack_top
    lgdt [gdt_desc]
    jmp 0x08:.flat
.flat:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    call serial_init

    mov esi, f_magic
    cmp ebp, MB1_BOOT_MAGIC
    jne fail32
    mov eax, cr0
    mov esi, f_entry
    test eax, 0x80000000
    jnz fail32
    mov esi, p_entry
    call puts32

    ; Page tables (SDM Vol. 3A §5.5): identity 0-4 MiB with two 2 MiB pages; VA 1 GiB
    ; through a 4 KiB page table to alias_page; PML4 entry 1 shares the PDPT, so VA
    ; 512 GiB + x is x.
    mov edi, tables
    mov ecx, TABLES_SIZE / 4
    xor eax, eax
    rep stosd
    mov dword [pml4], pdpt + 3
    mov dword [pml4 + 8], pdpt + 3
    mov dword [pdpt], pd + 3
    mov dword [pdpt + 8], pd_1g + 3
    mov dword [pd], 0x000083
    mov dword [pd + 8], 0x200083
    mov dword [pd_1g], pt_1g + 3
    mov dword [pt_1g], alias_page + 3

    mov eax, cr4
    or eax, 1 << 5                  ; PAE
    mov cr4, eax
    mov eax, pml4
    mov cr3, eax
    mov ecx, MSR_EFER
    rdmsr
    or eax, 1 << 8                  ; LME
    wrmsr
    mov eax, cr0
    or eax, 0x80000000              ; PG: long mode becomes active (LMA)
    mov cr0, eax
    jmp 0x18:long64

fail32:
    push esi
    mov esi, s_fail
    call puts32
    pop esi
    call puts32
    mov esi, s_done
    call puts32
.halt:
    cli
    hlt
    jmp .halt

serial_init:
    mov dx, COM1 + 1
    xor al, al
    out dx, al
    mov dx, COM1 + 3
    mov al, 0x80
    out dx, al
    mov dx, COM1
    mov al, 1
    out dx, al
    mov dx, COM1 + 1
    xor al, al
    out dx, al
    mov dx, COM1 + 3
    mov al, 0x03
    out dx, al
    ret

puts32:
    PUTS

bits 64
long64:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, stack_top

    ; REX.W immediates only decode this way in 64-bit mode.
    mov rax, 0x0000000100000000
    shr rax, 32
    mov esi, f_64
    cmp rax, 1
    jne fail64
    mov ecx, MSR_EFER
    rdmsr
    mov esi, f_lma
    test eax, 1 << 10
    jz fail64
    mov esi, p_64
    call puts64

    mov dword [ALIAS_1G], 0x600dcafe
    mov esi, f_alias1
    cmp dword [alias_page], 0x600dcafe
    jne fail64
    mov rbx, ALIAS_512G
    add rbx, alias_page
    mov dword [rbx + 4], 0x0badf00d
    mov esi, f_alias2
    cmp dword [alias_page + 4], 0x0badf00d
    jne fail64
    mov esi, p_paging
    call puts64

    ; A 64-bit interrupt gate for #UD (SDM Vol. 3A §6.14.1, Figure 6-8).
    mov eax, ud_handler
    mov word [idt64 + 6 * 16], ax
    mov word [idt64 + 6 * 16 + 2], 0x18
    mov word [idt64 + 6 * 16 + 4], 0x8e00
    shr eax, 16
    mov word [idt64 + 6 * 16 + 6], ax
    mov dword [idt64 + 6 * 16 + 8], 0
    lidt [idt64_desc]
    mov byte [ud_seen], 0
ud_at:
    ud2
    mov esi, f_ud
    cmp byte [ud_seen], 1
    jne fail64
    mov esi, p_ud
    call puts64

    mov esi, s_done
    call puts64
.halt:
    cli
    hlt
    jmp .halt

ud_handler:
    mov byte [ud_seen], 2
    cmp qword [rsp], ud_at          ; RIP of the faulting instruction
    jne .resume
    mov byte [ud_seen], 1
.resume:
    add qword [rsp], 2
    iretq

fail64:
    push rsi
    mov esi, s_fail
    call puts64
    pop rsi
    call puts64
    mov esi, s_done
    call puts64
.halt:
    cli
    hlt
    jmp .halt

puts64:
    PUTS

section .rodata
align 8
; null, 32-bit code 0x08, data 0x10, 64-bit code 0x18 (L set, SDM Vol. 3A §3.4.5).
gdt:
    dq 0
    dq 0x00cf9a000000ffff
    dq 0x00cf92000000ffff
    dq 0x00af9a000000ffff
gdt_end:
gdt_desc:
    dw gdt_end - gdt - 1
    dd gdt
idt64_desc:
    dw 32 * 16 - 1
    dd idt64, 0

s_fail:   db "FAIL ", 0
s_done:   db "DONE longmode", 10, 0
p_entry:  db "PASS lm-entry-protected-mode", 10, 0
p_64:     db "PASS lm-64bit-mode", 10, 0
p_paging: db "PASS lm-own-page-tables", 10, 0
p_ud:     db "PASS lm-exception-64bit-idt", 10, 0
f_magic:  db "lm-entry-protected-mode: EAX is not the Multiboot magic", 10, 0
f_entry:  db "lm-entry-protected-mode: CR0.PG set at entry", 10, 0
f_64:     db "lm-64bit-mode: a 64-bit immediate did not survive", 10, 0
f_lma:    db "lm-64bit-mode: EFER.LMA clear after enabling paging", 10, 0
f_alias1: db "lm-own-page-tables: a write through VA 1 GiB missed its 4 KiB page", 10, 0
f_alias2: db "lm-own-page-tables: a write through VA 512 GiB missed its alias", 10, 0
f_ud:     db "lm-exception-64bit-idt: #UD did not arrive at the UD2 through the 64-bit IDT", 10, 0

section .bss
alignb 4096
tables:
pml4:       resb 4096
pdpt:       resb 4096
pd:         resb 4096
pd_1g:      resb 4096
pt_1g:      resb 4096
alias_page: resb 4096
TABLES_SIZE equ $ - tables
idt64:      resb 32 * 16
ud_seen:    resb 1
alignb 16
stack:      resb 8192
stack_top:
