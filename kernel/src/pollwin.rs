//! When the serve loop halts its vCPU.
//!
//! Waking a halted vCPU costs an event through Xen (an upcall, and a trip through Xen's
//! scheduler), and a guest that sends one request after another signals pvfs twice per
//! request: once for the request, once when it has taken the reply. So after the last
//! request the serve loop keeps polling the rings for a short window, with their event
//! channels masked (a guest's signal then only marks the port pending, without interrupting
//! pvfs); it halts once the window has passed without work, after unmasking the ports.

/// The polling window after the last piece of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollWindow {
    window_ns: u64,
    /// When work was last seen, while polling.
    last_busy: Option<u64>,
}

impl PollWindow {
    /// A window of `window_ns` (0: never poll, halt as soon as there is no work).
    pub const fn new(window_ns: u64) -> Self {
        Self {
            window_ns,
            last_busy: None,
        }
    }

    /// Work was done at `now`. Returns true if polling starts with it (the caller masks the
    /// rings' ports); false if it was already polling or the window is 0.
    pub fn busy(&mut self, now: u64) -> bool {
        if self.window_ns == 0 {
            return false;
        }
        let started = self.last_busy.is_none();
        self.last_busy = Some(now);
        started
    }

    /// Whether the loop is polling (the rings' ports are masked).
    pub fn polling(&self) -> bool {
        self.last_busy.is_some()
    }

    /// Whether, with no work found at `now`, the loop should poll again instead of halting.
    pub fn keep_polling(&self, now: u64) -> bool {
        self.last_busy
            .is_some_and(|t| now < t.saturating_add(self.window_ns))
    }

    /// Ends polling before a halt. Returns true if it was polling (the caller unmasks).
    pub fn stop(&mut self) -> bool {
        self.last_busy.take().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_window_never_polls() {
        let mut w = PollWindow::new(0);
        assert!(!w.busy(10));
        assert!(!w.polling());
        assert!(!w.keep_polling(10));
        assert!(!w.stop());
    }

    #[test]
    fn polls_until_the_window_after_the_last_work_has_passed() {
        let mut w = PollWindow::new(1000);
        assert!(w.busy(100), "the first work starts polling");
        assert!(!w.busy(600), "later work extends it");
        assert!(w.polling());
        assert!(w.keep_polling(1599));
        assert!(!w.keep_polling(1600));
        assert!(w.stop());
        assert!(!w.polling() && !w.keep_polling(1000));
        assert!(!w.stop(), "stop reports the end of polling once");
        assert!(w.busy(5000), "polling starts again with new work");
    }

    #[test]
    fn huge_window_does_not_overflow() {
        let mut w = PollWindow::new(u64::MAX);
        w.busy(u64::MAX - 1);
        assert!(w.keep_polling(u64::MAX - 1));
    }
}
