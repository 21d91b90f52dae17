//! Protocol constants: header sizes, reserved tag / fid / uid values, message type numbers,
//! qid types and the bit sets of Tgetattr, Tsetattr and Tlock.

/// Size of the message header: `size[4] type[1] tag[2]`.
pub const HEADER_LEN: usize = 7;
/// Header of Rread / Rreaddir (size, type, tag, count): the `msize - IOHDR` payload bound.
pub const RREAD_HEADER_LEN: usize = 11;
/// Maximum names in one Twalk (and qids in one Rwalk).
pub const MAX_WELEM: usize = 16;
/// Tag used by Tversion.
pub const NOTAG: u16 = 0xffff;
/// "No fid" (Tattach afid when no authentication is used).
pub const NOFID: u32 = 0xffff_ffff;
/// "No uid" (Tattach n_uname when only the uname string is meaningful).
pub const NONUNAME: u32 = 0xffff_ffff;

/// Length of an encoded qid.
pub const QID_LEN: usize = 13;

/// Message type numbers.
#[allow(missing_docs, reason = "names are the protocol's own")]
pub mod ty {
    pub const TLERROR: u8 = 6;
    pub const RLERROR: u8 = 7;
    pub const TSTATFS: u8 = 8;
    pub const RSTATFS: u8 = 9;
    pub const TLOPEN: u8 = 12;
    pub const RLOPEN: u8 = 13;
    pub const TLCREATE: u8 = 14;
    pub const RLCREATE: u8 = 15;
    pub const TSYMLINK: u8 = 16;
    pub const RSYMLINK: u8 = 17;
    pub const TMKNOD: u8 = 18;
    pub const RMKNOD: u8 = 19;
    pub const TRENAME: u8 = 20;
    pub const RRENAME: u8 = 21;
    pub const TREADLINK: u8 = 22;
    pub const RREADLINK: u8 = 23;
    pub const TGETATTR: u8 = 24;
    pub const RGETATTR: u8 = 25;
    pub const TSETATTR: u8 = 26;
    pub const RSETATTR: u8 = 27;
    pub const TXATTRWALK: u8 = 30;
    pub const RXATTRWALK: u8 = 31;
    pub const TXATTRCREATE: u8 = 32;
    pub const RXATTRCREATE: u8 = 33;
    pub const TREADDIR: u8 = 40;
    pub const RREADDIR: u8 = 41;
    pub const TFSYNC: u8 = 50;
    pub const RFSYNC: u8 = 51;
    pub const TLOCK: u8 = 52;
    pub const RLOCK: u8 = 53;
    pub const TGETLOCK: u8 = 54;
    pub const RGETLOCK: u8 = 55;
    pub const TLINK: u8 = 70;
    pub const RLINK: u8 = 71;
    pub const TMKDIR: u8 = 72;
    pub const RMKDIR: u8 = 73;
    pub const TRENAMEAT: u8 = 74;
    pub const RRENAMEAT: u8 = 75;
    pub const TUNLINKAT: u8 = 76;
    pub const RUNLINKAT: u8 = 77;
    pub const TVERSION: u8 = 100;
    pub const RVERSION: u8 = 101;
    pub const TAUTH: u8 = 102;
    pub const RAUTH: u8 = 103;
    pub const TATTACH: u8 = 104;
    pub const RATTACH: u8 = 105;
    pub const TFLUSH: u8 = 108;
    pub const RFLUSH: u8 = 109;
    pub const TWALK: u8 = 110;
    pub const RWALK: u8 = 111;
    pub const TREAD: u8 = 116;
    pub const RREAD: u8 = 117;
    pub const TWRITE: u8 = 118;
    pub const RWRITE: u8 = 119;
    pub const TCLUNK: u8 = 120;
    pub const RCLUNK: u8 = 121;
    pub const TREMOVE: u8 = 122;
    pub const RREMOVE: u8 = 123;
}

/// Qid type bits.
pub mod qid_type {
    /// Directory.
    pub const DIR: u8 = 0x80;
    /// Symbolic link.
    pub const SYMLINK: u8 = 0x02;
    /// Regular file (and everything else).
    pub const FILE: u8 = 0x00;
}

/// Tgetattr request-mask / Rgetattr valid bits.
#[allow(missing_docs, reason = "names are the protocol's own")]
pub mod getattr {
    pub const MODE: u64 = 0x1;
    pub const NLINK: u64 = 0x2;
    pub const UID: u64 = 0x4;
    pub const GID: u64 = 0x8;
    pub const RDEV: u64 = 0x10;
    pub const ATIME: u64 = 0x20;
    pub const MTIME: u64 = 0x40;
    pub const CTIME: u64 = 0x80;
    pub const INO: u64 = 0x100;
    pub const SIZE: u64 = 0x200;
    pub const BLOCKS: u64 = 0x400;
    pub const BTIME: u64 = 0x800;
    pub const GEN: u64 = 0x1000;
    pub const DATA_VERSION: u64 = 0x2000;
    pub const BASIC: u64 = 0x7ff;
    pub const ALL: u64 = 0x3fff;
}

/// Tsetattr valid bits.
#[allow(missing_docs, reason = "names are the protocol's own")]
pub mod setattr {
    pub const MODE: u32 = 0x1;
    pub const UID: u32 = 0x2;
    pub const GID: u32 = 0x4;
    pub const SIZE: u32 = 0x8;
    pub const ATIME: u32 = 0x10;
    pub const MTIME: u32 = 0x20;
    pub const CTIME: u32 = 0x40;
    pub const ATIME_SET: u32 = 0x80;
    pub const MTIME_SET: u32 = 0x100;
}

/// Tlock / Tgetlock constants.
#[allow(missing_docs, reason = "names are the protocol's own")]
pub mod lock {
    pub const RDLCK: u8 = 0;
    pub const WRLCK: u8 = 1;
    pub const UNLCK: u8 = 2;
    pub const STATUS_SUCCESS: u8 = 0;
    pub const STATUS_BLOCKED: u8 = 1;
    pub const STATUS_ERROR: u8 = 2;
    pub const STATUS_GRACE: u8 = 3;
    pub const FLAG_BLOCK: u32 = 1;
    pub const FLAG_RECLAIM: u32 = 2;
}
