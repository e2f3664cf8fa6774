; Multiboot2 header (Multiboot2 spec §3.1).  GRUB finds it in the first 32 KiB.
section .multiboot2
align 8
MB2_MAGIC  equ 0xE85250D6
MB2_ARCH   equ 0                      ; i386 protected mode entry
mb2_header:
    dd MB2_MAGIC, MB2_ARCH, mb2_header_end - mb2_header
    dd -(MB2_MAGIC + MB2_ARCH + (mb2_header_end - mb2_header))
    ; module alignment tag (type 6): modules page-aligned, so guest images can be
    ; handed over without copying.
    align 8
    dw 6, 0
    dd 8
    ; end tag
    align 8
    dw 0, 0
    dd 8
mb2_header_end:
