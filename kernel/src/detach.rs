//! When pvfs answers a toolstack's request to detach a device only if its guest has nothing
//! attached (`pvfs share rm` without `--force`; the 9pfs backend's `detach` key).

/// Service passes a detach request may wait for a device's rings to fall quiet (a request
/// being served, one the guest has produced and pvfs not yet taken) before it is answered
/// `busy`: a guest that keeps its rings busy cannot hold a request open for long.
pub const DETACH_MAX_WAITS: u32 = 4096;

/// What to do with a detach request, from the guest's fids in use and whether its rings are
/// quiet (nothing produced, queued or waiting to be answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The guest has something attached: refuse.
    Busy,
    /// Nothing attached and nothing in flight: detach.
    Detach,
    /// Requests in flight: look again after the next service pass.
    Wait,
}

/// The verdict for a device with `fids` in use, quiet rings or not, after `waited` passes.
pub fn verdict(fids: usize, quiet: bool, waited: u32) -> Verdict {
    if fids > 0 || (!quiet && waited >= DETACH_MAX_WAITS) {
        Verdict::Busy
    } else if quiet {
        Verdict::Detach
    } else {
        Verdict::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(verdict(1, true, 0), Verdict::Busy);
        assert_eq!(verdict(3, false, 0), Verdict::Busy);
        assert_eq!(verdict(0, true, 0), Verdict::Detach);
        assert_eq!(verdict(0, false, 0), Verdict::Wait);
        assert_eq!(verdict(0, false, DETACH_MAX_WAITS), Verdict::Busy);
    }
}
