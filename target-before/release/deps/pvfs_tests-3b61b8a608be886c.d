/work/main/target-before/release/deps/pvfs_tests-3b61b8a608be886c.d: tests/src/lib.rs tests/src/dedupset.rs tests/src/ext4img.rs tests/src/fatimg.rs tests/src/namei.rs tests/src/overlay_model.rs tests/src/p9client.rs tests/src/p9memfs.rs tests/src/wimg.rs

/work/main/target-before/release/deps/libpvfs_tests-3b61b8a608be886c.rlib: tests/src/lib.rs tests/src/dedupset.rs tests/src/ext4img.rs tests/src/fatimg.rs tests/src/namei.rs tests/src/overlay_model.rs tests/src/p9client.rs tests/src/p9memfs.rs tests/src/wimg.rs

/work/main/target-before/release/deps/libpvfs_tests-3b61b8a608be886c.rmeta: tests/src/lib.rs tests/src/dedupset.rs tests/src/ext4img.rs tests/src/fatimg.rs tests/src/namei.rs tests/src/overlay_model.rs tests/src/p9client.rs tests/src/p9memfs.rs tests/src/wimg.rs

tests/src/lib.rs:
tests/src/dedupset.rs:
tests/src/ext4img.rs:
tests/src/fatimg.rs:
tests/src/namei.rs:
tests/src/overlay_model.rs:
tests/src/p9client.rs:
tests/src/p9memfs.rs:
tests/src/wimg.rs:

# env-dep:CARGO_MANIFEST_DIR=/work/wt-before/tests
