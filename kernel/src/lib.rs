//! The pvfs unikernel's platform-independent logic, kept apart from the hardware code in
//! `main.rs` and its modules so that it is unit-tested on the host: the kernel command line,
//! the `hvm_start_info` reader, memory-map carving, heap bookkeeping and when to halt.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod cmdline;
pub mod commitclock;
pub mod detach;
pub mod devstats;
pub mod frames;
pub mod grants;
pub mod guards;
pub mod heapstats;
pub mod memmap;
pub mod pollwin;
pub mod ringclock;
pub mod ringorder;
pub mod stackuse;
pub mod startinfo;
pub mod tablewatch;
pub mod throttle;
