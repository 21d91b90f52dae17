//! PVH entry for the pvfs kernel.
//!
//! Xen and QEMU enter a PVH kernel in 32-bit protected mode with paging off, `%ebx` holding the
//! physical address of `hvm_start_info`, and no stack. This crate provides:
//! - the `Xen` ELF note of type 18 (`XEN_ELFNOTE_PHYS32_ENTRY`) naming `pvh_start32`;
//! - `pvh_start32`: builds identity page tables for the first 4 GiB with 2 MiB pages, enables
//!   PAE and long mode, loads a minimal GDT, switches to 64-bit code, sets up the boot stack and
//!   calls `pvfs_kernel_main(start_info_paddr: u64) -> !`, which the kernel crate defines.
//!
//! The page tables are in `.bss.pagetables`, which the linker script puts first in `.bss`; the
//! PVH loaders zero-fill `.bss`, and the entry code zeroes it again so that nothing relies on
//! that. Every stack (the boot stack and the two interrupt stacks) lives in the `.stacks`
//! section at the end of the image, above all other state, each with a guard page below it
//! that the kernel unmaps early (`kernel/src/arch/paging.rs`): a stack that overflows faults
//! instead of overwriting what lies below it.
#![no_std]

/// Size of the boot stack.
pub const BOOT_STACK_SIZE: usize = 256 * 1024;
/// Size of each interrupt stack (double fault; NMI and machine check).
pub const IST_STACK_SIZE: usize = 32 * 1024;
/// Size of the unmapped guard below each stack.
pub const GUARD_SIZE: usize = 4096;

// The PVH entry note below stands again in ci/xen/selftest/stub-pvh.S: that stub is a
// stand-alone kernel assembled on its own, without this crate, so it spells the note out.
#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .section .note.Xen, "a"
    .balign 4
    .long 4                 /* name size: "Xen\0" */
    .long 4                 /* descriptor size */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .long pvh_start32
    .balign 4

    .section .text.boot, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    cld
    mov %ebx, %esi                      /* keep start_info across the setup */

    /* Zero .bss (page tables, stacks, statics). */
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    shr $2, %ecx
    xor %eax, %eax
    rep stosl

    /* PD entries: 2048 x 2 MiB pages = 4 GiB, present | writable | huge. */
    mov $boot_pd, %edi
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    mov %eax, (%edi,%ecx,8)
    mov %ecx, %eax
    shr $11, %eax                       /* bits 32+ of the address: i >> 11 */
    mov %eax, 4(%edi,%ecx,8)
    inc %ecx
    cmp $2048, %ecx
    jne 1b

    /* PDPT[0..4] -> the four page directories. */
    mov $boot_pdpt, %edi
    mov $boot_pd, %eax
    or $0x3, %eax
    xor %ecx, %ecx
2:  mov %eax, (%edi,%ecx,8)
    add $4096, %eax
    inc %ecx
    cmp $4, %ecx
    jne 2b

    /* PML4[0] -> PDPT. */
    mov $boot_pdpt, %eax
    or $0x3, %eax
    mov %eax, boot_pml4

    mov $boot_pml4, %eax
    mov %eax, %cr3

    mov %cr4, %eax
    or $0x20, %eax                      /* PAE */
    mov %eax, %cr4

    mov $0xC0000080, %ecx               /* EFER */
    rdmsr
    or $0x100, %eax                     /* LME */
    wrmsr

    mov %cr0, %eax
    or $0x80010001, %eax                /* PG | WP | PE */
    and $0x9FFFFFFF, %eax               /* clear CD and NW: caches on */
    mov %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $3f

    .code64
3:  mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs
    mov %eax, %gs
    movabs $boot_stack_top, %rsp
    xor %ebp, %ebp
    mov %esi, %edi                      /* zero-extends: start_info paddr */
    call pvfs_kernel_main
4:  hlt
    jmp 4b

    .section .rodata
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF            /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF            /* 0x10: data */
boot_gdt_end:
    .balign 4
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .section .bss.pagetables, "aw", @nobits
    .balign 4096
    .global boot_pml4
boot_pml4:  .skip 4096
boot_pdpt:  .skip 4096
    .global boot_pd
boot_pd:    .skip 4 * 4096

    /* Stacks, each above a guard page; `.stacks` is the last section of the image. */
    .section .stacks, "aw", @nobits
    .balign 4096
    .global boot_stack_guard
boot_stack_guard: .skip {guard}
boot_stack: .skip {stack}
    .global boot_stack_top
boot_stack_top:
    .global df_stack_guard
df_stack_guard: .skip {guard}
    .skip {ist}
    .global df_stack_top
df_stack_top:
    .global nmi_stack_guard
nmi_stack_guard: .skip {guard}
    .skip {ist}
    .global nmi_stack_top
nmi_stack_top:
    "#,
    stack = const BOOT_STACK_SIZE,
    ist = const IST_STACK_SIZE,
    guard = const GUARD_SIZE,
    options(att_syntax)
);
