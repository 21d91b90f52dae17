//! The engine's errors: [`Error`] says what went wrong where, never panicking on disk data.

use crate::block::DevError;
use crate::ext4::Ino;

/// Errors from the ext4 engine. All carry enough data to say what went wrong where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The block device failed.
    Dev(DevError),
    /// The superblock magic is not 0xEF53.
    BadMagic {
        /// The value found.
        found: u16,
    },
    /// A superblock field is invalid.
    BadSuperblock {
        /// Which field.
        what: &'static str,
    },
    /// An INCOMPAT feature this engine cannot read.
    UnsupportedFeature {
        /// The feature's name (`"unknown"` if it has none).
        name: &'static str,
        /// Its bit in `s_feature_incompat`.
        bit: u32,
    },
    /// The journal needs recovery and could not be replayed.
    JournalRecovery {
        /// Why.
        what: &'static str,
    },
    /// A checksum did not match.
    Checksum {
        /// Which structure.
        what: &'static str,
        /// Block number, inode number or group number, depending on `what` (the
        /// superblock: its byte offset, 1024).
        at: u64,
    },
    /// A structure is malformed.
    Corrupt {
        /// Which structure.
        what: &'static str,
        /// Block number, inode number or byte offset, depending on `what`.
        at: u64,
    },
    /// The inode number is out of range or the inode is not in use.
    BadInode {
        /// The inode number.
        ino: Ino,
    },
    /// No such directory entry.
    NotFound,
    /// The inode is not a directory.
    NotDir {
        /// The inode number.
        ino: Ino,
    },
    /// The inode is a directory (and a file was needed).
    IsDir {
        /// The inode number.
        ino: Ino,
    },
    /// The inode is not a symbolic link.
    NotSymlink {
        /// The inode number.
        ino: Ino,
    },
    /// A name is longer than 255 bytes or contains `/` or NUL.
    InvalidName,
    /// No such extended attribute.
    NoXattr,
    /// A file feature this engine does not read (e.g. encrypted or ea_inode values).
    Unsupported {
        /// What.
        what: &'static str,
    },
    /// The file system is mounted read-only (or was refused read-write); says why.
    ReadOnly {
        /// Why.
        reason: &'static str,
    },
    /// The name already exists in the directory.
    Exists,
    /// No free block or inode left.
    NoSpace,
    /// The directory is not empty.
    NotEmpty,
    /// An argument the operation cannot accept (`EINVAL`), e.g. renaming a directory into
    /// its own subtree.
    Invalid {
        /// What was wrong.
        what: &'static str,
    },
    /// The inode already has the maximum number of links (`EMLINK`).
    TooManyLinks,
    /// The offset or size is beyond what the file system can hold (`EFBIG`).
    FileTooBig,
    /// A symbolic link's target is longer than the file system stores: a block less one
    /// byte, at most 4095 (`ENAMETOOLONG`, as Linux's ext4 answers).
    TargetTooLong,
    /// A grow past what the file system can describe: 2^32 - 1 blocks without `64bit`, a
    /// 32-bit inode count, or, where it cannot become `meta_bg`, what its descriptor blocks
    /// and reserved ones describe ([`crate::ext4::Ext4::grow_limit`]).
    GrowLimit {
        /// The largest size in blocks a grow can reach ([`crate::ext4::Ext4::grow_limit`]).
        max_blocks: u64,
    },
}

impl From<DevError> for Error {
    fn from(e: DevError) -> Self {
        Error::Dev(e)
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Dev(e) => write!(f, "device error: {e}"),
            Error::BadMagic { found } => write!(f, "not ext2/3/4: magic {found:#06x}"),
            Error::BadSuperblock { what } => write!(f, "invalid superblock: {what}"),
            Error::UnsupportedFeature { name, bit } => {
                write!(f, "unsupported incompatible feature {name} ({bit:#x})")
            }
            Error::JournalRecovery { what } => write!(f, "journal needs recovery: {what}"),
            Error::Checksum { what, at } => write!(f, "{what} checksum mismatch at {at}"),
            Error::Corrupt { what, at } => write!(f, "corrupt {what} at {at}"),
            Error::BadInode { ino } => write!(f, "inode {ino} is not in use or out of range"),
            Error::NotFound => write!(f, "no such file or directory"),
            Error::NotDir { ino } => write!(f, "inode {ino} is not a directory"),
            Error::IsDir { ino } => write!(f, "inode {ino} is a directory"),
            Error::NotSymlink { ino } => write!(f, "inode {ino} is not a symbolic link"),
            Error::InvalidName => write!(f, "invalid file name"),
            Error::NoXattr => write!(f, "no such extended attribute"),
            Error::Unsupported { what } => write!(f, "unsupported: {what}"),
            Error::ReadOnly { reason } => write!(f, "read-only: {reason}"),
            Error::Exists => write!(f, "file exists"),
            Error::NoSpace => write!(f, "no space left on device"),
            Error::NotEmpty => write!(f, "directory not empty"),
            Error::Invalid { what } => write!(f, "invalid argument: {what}"),
            Error::TooManyLinks => write!(f, "too many links"),
            Error::FileTooBig => write!(f, "file too large"),
            Error::TargetTooLong => write!(f, "symbolic link target too long"),
            Error::GrowLimit { max_blocks } => write!(
                f,
                "cannot grow past {max_blocks} blocks: the most the block count, the inode count and the group descriptors describe"
            ),
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// `Err(Error::Corrupt { what, at })`.
pub(crate) fn corrupt<T>(what: &'static str, at: u64) -> Result<T> {
    Err(Error::Corrupt { what, at })
}
