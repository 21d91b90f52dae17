//! Directory entries: [`DirEntryRepr`], one entry of an Rreaddir payload, and [`DirEntries`],
//! an iterator over such a payload.

use super::{Qid, Reader, WireError, Writer, QID_LEN};
use alloc::vec::Vec;

/// One directory entry inside an Rreaddir payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirEntryRepr<'a> {
    /// The entry's qid.
    pub qid: Qid,
    /// Cookie to pass as the next Treaddir offset to continue after this entry.
    pub offset: u64,
    /// `DT_*` type.
    pub ty: u8,
    /// Name bytes.
    pub name: &'a [u8],
}

impl DirEntryRepr<'_> {
    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        QID_LEN + 8 + 1 + 2 + self.name.len()
    }

    /// Appends the encoded entry.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let mut w = Writer::new(out);
        w.qid(&self.qid);
        w.u64(self.offset);
        w.u8(self.ty);
        w.str(self.name)
    }
}

/// Iterator over the entries of an Rreaddir payload. Stops (yielding an error once) on a
/// malformed entry.
#[derive(Debug, Clone)]
pub struct DirEntries<'a> {
    r: Reader<'a>,
    failed: bool,
}

impl<'a> DirEntries<'a> {
    /// Iterates over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        DirEntries {
            r: Reader::new(data),
            failed: false,
        }
    }
}

impl<'a> Iterator for DirEntries<'a> {
    type Item = Result<DirEntryRepr<'a>, WireError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.r.remaining() == 0 {
            return None;
        }
        let mut one = || -> Result<DirEntryRepr<'a>, WireError> {
            Ok(DirEntryRepr {
                qid: self.r.qid()?,
                offset: self.r.u64()?,
                ty: self.r.u8()?,
                name: self.r.str()?,
            })
        };
        let e = one();
        if e.is_err() {
            self.failed = true;
        }
        Some(e)
    }
}
