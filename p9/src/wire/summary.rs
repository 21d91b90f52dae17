//! One-line summaries of 9P messages for a wire trace (`pvfs.trace9p`): the message decoded
//! (its type name and fields as `Debug` prints them), with long fields cut so that a line stays
//! short. Any byte string is accepted; what does not decode is summarised as such.

use super::{Frame, Rmsg, Tmsg};
use alloc::format;
use alloc::string::String;

/// Longest summary, in bytes.
pub const MAX_SUMMARY: usize = 400;

/// A one-line summary of the T-message or R-message in `msg` (a whole message with its
/// header), at most [`MAX_SUMMARY`] bytes.
pub fn summary(msg: &[u8]) -> String {
    let Ok(frame) = Frame::new_checked(msg) else {
        return format!("undecodable message of {} bytes", msg.len());
    };
    let (ty, tag) = (frame.msg_type(), frame.tag());
    let body = if ty % 2 == 0 {
        Tmsg::parse(&frame).map(|m| format!("{m:?}"))
    } else {
        Rmsg::parse(&frame).map(|m| format!("{m:?}"))
    };
    let mut s = match body {
        Ok(b) => format!("tag {tag} {b}"),
        Err(e) => format!("tag {tag} type {ty}: {e:?} ({} bytes)", msg.len()),
    };
    if s.len() > MAX_SUMMARY {
        let mut cut = MAX_SUMMARY;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{SetattrReq, Tmsg};

    #[test]
    fn a_setattr_shows_its_nanoseconds_and_long_data_is_cut() {
        let mut out = alloc::vec::Vec::new();
        Tmsg::Setattr {
            fid: 5,
            attr: SetattrReq {
                valid: 0x1b0,
                atime_sec: 1_900_000_000,
                atime_nsec: 100_000_000,
                ..Default::default()
            },
        }
        .emit(7, &mut out)
        .unwrap();
        let s = summary(&out);
        assert!(s.starts_with("tag 7 Setattr"), "{s}");
        assert!(s.contains("atime_nsec: 100000000"), "{s}");
        let data = [0xAB; 4096];
        let mut w = alloc::vec::Vec::new();
        Tmsg::Write {
            fid: 1,
            offset: 0,
            data: &data,
        }
        .emit(8, &mut w)
        .unwrap();
        let s = summary(&w);
        assert!(s.len() <= MAX_SUMMARY + '…'.len_utf8(), "{}", s.len());
        assert!(summary(&[1, 2, 3]).starts_with("undecodable"));
    }
}
