/* A PVH kernel that only prints a banner through port 0xE9 and then sleeps forever: it never
 * writes data/pvfs/status. ci/xen/selftest.sh boots it to prove the "boot" scenario fails
 * (and sees the banner) when the kernel does not report ready.
 * The PVH entry note is the one boot/src/lib.rs emits, spelled out again: this stub is
 * assembled on its own, without the Rust crate. */
        .section .note.Xen, "a", @note
        .balign 4
        .long 4                 /* name size: "Xen\0" */
        .long 4                 /* descriptor size */
        .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
        .asciz "Xen"
        .balign 4
        .long _start

        .text
        .code32
        .globl _start
_start:
        mov $banner, %esi
1:      lodsb
        test %al, %al
        jz 2f
        outb %al, $0xe9
        jmp 1b
2:      sti
        hlt
        jmp 2b
banner: .asciz "pvfs selftest stub: banner only, no xenstore\n"
