//! Ending the domain: SCHEDOP_shutdown under Xen, `isa-debug-exit` under plain QEMU.
//!
//! QEMU's `isa-debug-exit` (iobase 0xf4) turns a written value `v` into exit status
//! `(v << 1) | 1`: success writes 16 (status 33), failure writes 1 (status 3). A triple fault
//! with `-no-reboot` exits with status 0, which therefore never counts as a pass.

use crate::arch;
use crate::xen::ShutdownReason;

const DEBUG_EXIT_PORT: u16 = 0xF4;
/// Value written for success: QEMU exits with status 33.
pub const QEMU_EXIT_SUCCESS: u32 = 16;
/// Value written for failure: QEMU exits with status 3.
pub const QEMU_EXIT_FAILURE: u32 = 1;

/// Powers off after success.
pub fn poweroff() -> ! {
    end(ShutdownReason::Poweroff, QEMU_EXIT_SUCCESS)
}

/// Ends the domain as crashed.
pub fn crash() -> ! {
    end(ShutdownReason::Crash, QEMU_EXIT_FAILURE)
}

/// Shuts the domain down for `reason` under Xen; under plain QEMU, writes `qemu_value` to
/// `isa-debug-exit`.
fn end(reason: ShutdownReason, qemu_value: u32) -> ! {
    if crate::xen::present() {
        crate::xen::shutdown(reason);
    } else {
        arch::outl(DEBUG_EXIT_PORT, qemu_value);
    }
    arch::halt_forever()
}
