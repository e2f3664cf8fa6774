; flat32: raw bytes that plinth's flat loader puts at 1 MiB and enters in flat 32-bit
; protected mode at their first byte (loader = flat, load = entry = 0x100000).
; Checks the mode, that EIP is the entry, and that code and data segments are flat.
bits 32
org 0x100000

COM1 equ 0x3f8

start:
    cli
    mov esp, stack_top
    call serial_init
    call .here
.here:
    pop ebx

    mov eax, cr0
    mov esi, n_mode
    and eax, 0x80000001
    cmp eax, 1                       ; PE set, PG clear
    call report

    mov esi, n_eip
    cmp ebx, .here
    call report

    ; A byte written through DS reads back through CS and SS: all three are flat.
    mov byte [probe], 0x5a
    mov esi, n_flat
    cmp byte [cs:probe], 0x5a
    jne .flat_bad
    cmp byte [ss:probe], 0x5a
.flat_bad:
    call report

    mov esi, s_done
    call puts
.halt:
    cli
    hlt
    jmp .halt

; ESI = check name, ZF = passed.
report:
    jnz .bad
    push esi
    mov esi, s_pass
    call puts
    pop esi
    call puts
    mov esi, s_nl
    jmp puts
.bad:
    push esi
    mov esi, s_fail
    call puts
    pop esi
    call puts
    mov esi, s_bad
    jmp puts

%include "lib/serial.inc"

s_pass: db "PASS ", 0
s_fail: db "FAIL ", 0
s_bad:  db ": unexpected state", 10, 0
s_nl:   db 10, 0
s_done: db "DONE flat32", 10, 0
n_mode: db "flat-protected-no-paging", 0
n_eip:  db "flat-entry-eip", 0
n_flat: db "flat-segments", 0
probe:  db 0
align 16
stack:  times 1024 db 0
stack_top:
