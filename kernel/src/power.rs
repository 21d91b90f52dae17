//! Ending the domain: SCHEDOP_shutdown under Xen, `isa-debug-exit` under plain QEMU.
//!
//! QEMU's `isa-debug-exit` (iobase 0xf4) turns a written value `v` into exit status
//! `(v << 1) | 1`: success writes 16 (status 33), failure writes 1 (status 3). A triple fault
//! with `-no-reboot` exits with status 0, which therefore never counts as a pass.

use crate::arch;

const DEBUG_EXIT_PORT: u16 = 0xF4;
/// Value written for success: QEMU exits with status 33.
pub const QEMU_EXIT_SUCCESS: u32 = 16;
/// Value written for failure: QEMU exits with status 3.
pub const QEMU_EXIT_FAILURE: u32 = 1;

/// Powers off after success.
pub fn poweroff() -> ! {
    if crate::xen::present() {
        crate::xen::shutdown(crate::xen::ShutdownReason::Poweroff);
    } else {
        arch::outl(DEBUG_EXIT_PORT, QEMU_EXIT_SUCCESS);
    }
    arch::halt_forever()
}

/// Ends the domain as crashed.
pub fn crash() -> ! {
    if crate::xen::present() {
        crate::xen::shutdown(crate::xen::ShutdownReason::Crash);
    } else {
        arch::outl(DEBUG_EXIT_PORT, QEMU_EXIT_FAILURE);
    }
    arch::halt_forever()
}
