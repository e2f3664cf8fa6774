; Benchmark guest (Multiboot 1, 32-bit): times round trips through plinth's exit path
; with the guest's own TSC and prints one line per measurement:
;   bench: <name> <iterations> iterations, <ticks> tsc ticks each
; Under Bochs the TSC advances one tick per emulated instruction, so each figure is
; plinth's instructions per round trip (plus the few of the loop itself).
bits 32
ITER equ 1000

section .text
align 4
    dd 0x1BADB002, 0x00000003, -(0x1BADB002 + 3)   ; first in .text: within the first 8 KiB
global _start
_start:
    mov esp, stack_top
    call serial_init
    ; CPUID leaf 0: the cheapest exit (a table lookup in the monitor).
    mov esi, name_cpuid
    mov ebx, bench_cpuid
    call measure
    ; IN from an unclaimed port: the I/O exit path and the port bus.
    mov esi, name_io
    mov ebx, bench_io
    call measure
    ; The loop alone, to subtract.
    mov esi, name_empty
    mov ebx, bench_empty
    call measure
    mov esi, done_msg
    call puts
    cli
    hlt

bench_cpuid:
    push ebx                     ; CPUID writes EBX, which holds the function pointer
    xor eax, eax
    xor ecx, ecx
    cpuid
    pop ebx
    ret
bench_io:
    in al, 0x80
    ret
bench_empty:
    push ebx                     ; the same push/pop as bench_cpuid, so it cancels out
    pop ebx
    ret

; ebx = function to time, esi = its name.
measure:
    push esi
    call bench_warm
    rdtsc
    mov [t0], eax
    mov [t0 + 4], edx
    mov edi, ITER
.loop:
    call ebx
    dec edi
    jnz .loop
    rdtsc
    sub eax, [t0]
    sbb edx, [t0 + 4]
    mov ecx, ITER
    div ecx                      ; eax = ticks per iteration (the total fits in 32 bits x ITER)
    mov [per], eax
    mov esi, prefix
    call puts
    pop esi
    call puts
    mov esi, mid
    call puts
    mov eax, ITER
    call putdec
    mov esi, mid2
    call puts
    mov eax, [per]
    call putdec
    mov esi, suffix
    call puts
    ret

bench_warm:
    call ebx
    ret

serial_init:
    mov dx, 0x3fb
    mov al, 0x80
    out dx, al
    mov dx, 0x3f8
    mov al, 1
    out dx, al
    mov dx, 0x3f9
    xor al, al
    out dx, al
    mov dx, 0x3fb
    mov al, 3
    out dx, al
    ret

putc:                            ; al
    push edx
    push eax
    mov dx, 0x3fd
.wait:
    in al, dx
    test al, 0x20
    jz .wait
    pop eax
    mov dx, 0x3f8
    out dx, al
    pop edx
    ret

puts:                            ; esi
    lodsb
    test al, al
    jz .end
    call putc
    jmp puts
.end:
    ret

putdec:                          ; eax
    mov ecx, 10
    xor edi, edi
.digits:
    xor edx, edx
    div ecx
    push edx
    inc edi
    test eax, eax
    jnz .digits
.out:
    pop eax
    add al, '0'
    call putc
    dec edi
    jnz .out
    ret

section .data
prefix:     db "bench: ", 0
mid:        db " ", 0
mid2:       db " iterations, ", 0
suffix:     db " tsc ticks each", 10, 0
name_cpuid: db "cpuid-exit", 0
name_io:    db "io-exit", 0
name_empty: db "loop-only", 0
done_msg:   db "bench: done", 10, 0

section .bss
align 8
t0:  resq 1
per: resd 1
resb 4096
stack_top:
