//! How large a ring each new 9pfs device is offered (`max-ring-page-order`), from what is left
//! of pvfs's mapping budget: the frames of its window for foreign pages (the same count as
//! Xen's default maptrack limit, README "Limits").
//!
//! A device with `rings` rings at order `o` maps `rings × (1 + 2^o)` pages: each ring's
//! interface page and its data pages. The policy: offer the largest order (up to the maximum)
//! that fits [`RESERVE_DEVICES`] times in what is free, so that every device gets full-size
//! rings while plenty is left, and as the budget runs down each order goes to up to
//! [`RESERVE_DEVICES`] more devices before the next smaller one; below that, order 0 while it
//! fits once; then none (the device is refused, with a reason). With the default 1 GiB window
//! (262,144 frames) and two rings a device, the first 128 devices get order 9 (2 MiB of ring
//! each way), then 84 to 127 devices each order 8 down to 1, then 191 order 0: 1,240 devices
//! before the budget is gone (the test below counts them).

/// Devices each offered order is meant to leave room for.
pub const RESERVE_DEVICES: u64 = 128;

/// Frames a device with `rings` rings of order `order` maps.
pub fn frames_needed(order: u32, rings: u32) -> u64 {
    u64::from(rings).saturating_mul(1u64.saturating_add(1u64 << order.min(32)))
}

/// The order to offer a new device with `rings` rings when `free` frames are left (less what
/// devices offered an order but not yet connected will take), at most `max_order`; `None`
/// when not even order 0 fits.
pub fn offer_order(free: u64, rings: u32, max_order: u32) -> Option<u32> {
    let fits = |o: u32, times: u64| frames_needed(o, rings).saturating_mul(times) <= free;
    (0..=max_order)
        .rev()
        .find(|&o| fits(o, RESERVE_DEVICES))
        .or_else(|| fits(0, 1).then_some(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Devices arriving one after another, each taking what it was offered: the orders
    /// offered, in order, until the budget refuses one.
    fn arrivals(mut free: u64, rings: u32, max: u32) -> Vec<u32> {
        let mut out = Vec::new();
        while let Some(o) = offer_order(free, rings, max) {
            out.push(o);
            free -= frames_needed(o, rings);
        }
        out
    }

    #[test]
    fn needs() {
        assert_eq!(frames_needed(9, 2), 2 * 513);
        assert_eq!(frames_needed(0, 2), 4);
        assert_eq!(frames_needed(0, 1), 2);
        assert_eq!(frames_needed(u32::MAX, u32::MAX), u64::MAX);
    }

    #[test]
    fn full_order_while_plenty_then_smaller_and_device_1000_connects() {
        let got = arrivals(262_144, 2, 9);
        // the documented figures
        assert_eq!(got.iter().take_while(|&&o| o == 9).count(), 128);
        assert!(got.len() > 1_000, "{} devices", got.len());
        assert_eq!(got.len(), 1_240);
        assert_eq!(got.iter().filter(|&&o| o == 0).count(), 191);
        // never larger than an earlier offer
        assert!(got.windows(2).all(|w| w[1] <= w[0]));
        // every order down to 0 is offered to many devices before the next smaller one
        for o in 1..9 {
            let n = got.iter().filter(|&&x| x == o).count();
            assert!((84..=128).contains(&n), "order {o}: {n} devices");
        }
        assert!(got.contains(&0));
    }

    #[test]
    fn small_budgets_and_limits() {
        assert_eq!(offer_order(0, 2, 9), None);
        assert_eq!(offer_order(3, 2, 9), None);
        assert_eq!(offer_order(4, 2, 9), Some(0));
        // the largest that fits 128 times, then order 0 while it fits
        assert_eq!(offer_order(262_144, 2, 9), Some(9));
        assert_eq!(offer_order(131_328, 2, 9), Some(9));
        assert_eq!(offer_order(131_327, 2, 9), Some(8));
        assert_eq!(offer_order(1_026, 2, 9), Some(1));
        assert_eq!(offer_order(511, 2, 9), Some(0));
        // plenty: the maximum, never more
        assert_eq!(offer_order(u64::MAX, 2, 9), Some(9));
        assert_eq!(offer_order(u64::MAX, 2, 4), Some(4));
        assert_eq!(offer_order(u64::MAX, 0, 9), Some(9));
        // a small window (a crowded memory map): fewer large rings, still many devices
        let got = arrivals(32_768, 2, 9);
        assert!(got.len() > 400, "{}", got.len());
        assert!(got[0] < 9);
    }
}
