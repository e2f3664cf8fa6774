; realmode: a flat image entered in real mode at 0000:7c00 (plinth's realmode loader;
; it is also a valid boot sector, so a PC BIOS runs it unchanged).  Checks CS:IP,
; CR0.PE clear, segment:offset addressing, 32-bit operands, the real-mode IVT and a
; software interrupt through it (SDM Vol. 3A §21.1).
bits 16
org 0x7c00

COM1 equ 0x3f8

start:
    cli
    mov bx, cs                  ; CS as entered, kept in BX
    xor ax, ax
    mov ss, ax
    mov sp, 0x7c00
    mov ds, ax
    mov es, ax
    call serial_init

    call .here
.here:
    pop cx
    mov si, n_csip
    test bx, bx
    jnz .csip_bad
    cmp cx, .here
.csip_bad:
    call report

    smsw ax
    mov si, n_pe
    test al, 1
    call report

    mov ax, 0x1000
    mov es, ax
    mov byte [es:0x10], 0x5a
    mov ax, 0x1001
    mov fs, ax
    mov si, n_seg
    cmp byte [fs:0], 0x5a       ; 1000:0010 and 1001:0000 are both linear 0x10010
    jne .seg_bad
    mov byte [fs:0], 0xa5
    cmp byte [es:0x10], 0xa5
.seg_bad:
    call report
    xor ax, ax
    mov es, ax

    mov eax, 0x12345678
    shr eax, 16
    mov si, n_op32
    cmp ax, 0x1234
    call report

    sidt [idtr]
    mov si, n_ivt
    cmp word [idtr], 0x3ff
    jne .ivt_bad
    cmp dword [idtr + 2], 0
.ivt_bad:
    call report

    mov word [0x80 * 4], int80
    mov word [0x80 * 4 + 2], 0
    mov byte [int_seen], 0
    int 0x80
    mov si, n_int
    cmp byte [int_seen], 1
    call report

    mov si, s_done
    call puts
.halt:
    cli
    hlt
    jmp .halt

int80:
    mov byte [cs:int_seen], 1
    iret

; SI = check name, ZF = passed.
report:
    jnz .bad
    push si
    mov si, s_pass
    call puts
    pop si
    call puts
    mov si, s_nl
    jmp puts
.bad:
    push si
    mov si, s_fail
    call puts
    pop si
    call puts
    mov si, s_bad
    jmp puts

%include "lib/serial.inc"

s_pass: db "PASS ", 0
s_fail: db "FAIL ", 0
s_bad:  db ": unexpected state", 10, 0
s_nl:   db 10, 0
s_done: db "DONE realmode", 10, 0
n_csip: db "rm-cs-ip", 0
n_pe:   db "rm-cr0-pe-clear", 0
n_seg:  db "rm-segment-addressing", 0
n_op32: db "rm-32bit-operands", 0
n_ivt:  db "rm-idtr-ivt", 0
n_int:  db "rm-software-int", 0
int_seen: db 0
idtr:   times 6 db 0

    times 510 - ($ - $$) db 0
    dw 0xaa55
