/work/main/target-before/release/deps/pvfs_9p-5457fe7ca64b0506.d: p9/src/lib.rs p9/src/channel.rs p9/src/ext4.rs p9/src/fat.rs p9/src/fs.rs p9/src/host.rs p9/src/idpolicy.rs p9/src/memfs.rs p9/src/overlay/mod.rs p9/src/overlay/copyup.rs p9/src/overlay/modify.rs p9/src/overlay/readdir.rs p9/src/overlay/share.rs p9/src/overlay/table.rs p9/src/perm.rs p9/src/policy.rs p9/src/privs.rs p9/src/sched.rs p9/src/server/mod.rs p9/src/server/access.rs p9/src/server/attach.rs p9/src/server/attr.rs p9/src/server/buffers.rs p9/src/server/connection.rs p9/src/server/dispatch.rs p9/src/server/export.rs p9/src/server/fids.rs p9/src/server/io.rs p9/src/server/lock.rs p9/src/server/namespace.rs p9/src/server/open.rs p9/src/server/session.rs p9/src/server/write_behind.rs p9/src/server/xattr.rs p9/src/volume.rs p9/src/wire/mod.rs p9/src/wire/codec.rs p9/src/wire/constants.rs p9/src/wire/dirent.rs p9/src/wire/error.rs p9/src/wire/fields.rs p9/src/wire/frame.rs p9/src/wire/rmsg.rs p9/src/wire/summary.rs p9/src/wire/tmsg.rs

/work/main/target-before/release/deps/libpvfs_9p-5457fe7ca64b0506.rlib: p9/src/lib.rs p9/src/channel.rs p9/src/ext4.rs p9/src/fat.rs p9/src/fs.rs p9/src/host.rs p9/src/idpolicy.rs p9/src/memfs.rs p9/src/overlay/mod.rs p9/src/overlay/copyup.rs p9/src/overlay/modify.rs p9/src/overlay/readdir.rs p9/src/overlay/share.rs p9/src/overlay/table.rs p9/src/perm.rs p9/src/policy.rs p9/src/privs.rs p9/src/sched.rs p9/src/server/mod.rs p9/src/server/access.rs p9/src/server/attach.rs p9/src/server/attr.rs p9/src/server/buffers.rs p9/src/server/connection.rs p9/src/server/dispatch.rs p9/src/server/export.rs p9/src/server/fids.rs p9/src/server/io.rs p9/src/server/lock.rs p9/src/server/namespace.rs p9/src/server/open.rs p9/src/server/session.rs p9/src/server/write_behind.rs p9/src/server/xattr.rs p9/src/volume.rs p9/src/wire/mod.rs p9/src/wire/codec.rs p9/src/wire/constants.rs p9/src/wire/dirent.rs p9/src/wire/error.rs p9/src/wire/fields.rs p9/src/wire/frame.rs p9/src/wire/rmsg.rs p9/src/wire/summary.rs p9/src/wire/tmsg.rs

/work/main/target-before/release/deps/libpvfs_9p-5457fe7ca64b0506.rmeta: p9/src/lib.rs p9/src/channel.rs p9/src/ext4.rs p9/src/fat.rs p9/src/fs.rs p9/src/host.rs p9/src/idpolicy.rs p9/src/memfs.rs p9/src/overlay/mod.rs p9/src/overlay/copyup.rs p9/src/overlay/modify.rs p9/src/overlay/readdir.rs p9/src/overlay/share.rs p9/src/overlay/table.rs p9/src/perm.rs p9/src/policy.rs p9/src/privs.rs p9/src/sched.rs p9/src/server/mod.rs p9/src/server/access.rs p9/src/server/attach.rs p9/src/server/attr.rs p9/src/server/buffers.rs p9/src/server/connection.rs p9/src/server/dispatch.rs p9/src/server/export.rs p9/src/server/fids.rs p9/src/server/io.rs p9/src/server/lock.rs p9/src/server/namespace.rs p9/src/server/open.rs p9/src/server/session.rs p9/src/server/write_behind.rs p9/src/server/xattr.rs p9/src/volume.rs p9/src/wire/mod.rs p9/src/wire/codec.rs p9/src/wire/constants.rs p9/src/wire/dirent.rs p9/src/wire/error.rs p9/src/wire/fields.rs p9/src/wire/frame.rs p9/src/wire/rmsg.rs p9/src/wire/summary.rs p9/src/wire/tmsg.rs

p9/src/lib.rs:
p9/src/channel.rs:
p9/src/ext4.rs:
p9/src/fat.rs:
p9/src/fs.rs:
p9/src/host.rs:
p9/src/idpolicy.rs:
p9/src/memfs.rs:
p9/src/overlay/mod.rs:
p9/src/overlay/copyup.rs:
p9/src/overlay/modify.rs:
p9/src/overlay/readdir.rs:
p9/src/overlay/share.rs:
p9/src/overlay/table.rs:
p9/src/perm.rs:
p9/src/policy.rs:
p9/src/privs.rs:
p9/src/sched.rs:
p9/src/server/mod.rs:
p9/src/server/access.rs:
p9/src/server/attach.rs:
p9/src/server/attr.rs:
p9/src/server/buffers.rs:
p9/src/server/connection.rs:
p9/src/server/dispatch.rs:
p9/src/server/export.rs:
p9/src/server/fids.rs:
p9/src/server/io.rs:
p9/src/server/lock.rs:
p9/src/server/namespace.rs:
p9/src/server/open.rs:
p9/src/server/session.rs:
p9/src/server/write_behind.rs:
p9/src/server/xattr.rs:
p9/src/volume.rs:
p9/src/wire/mod.rs:
p9/src/wire/codec.rs:
p9/src/wire/constants.rs:
p9/src/wire/dirent.rs:
p9/src/wire/error.rs:
p9/src/wire/fields.rs:
p9/src/wire/frame.rs:
p9/src/wire/rmsg.rs:
p9/src/wire/summary.rs:
p9/src/wire/tmsg.rs:
