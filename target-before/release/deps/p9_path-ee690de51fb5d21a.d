/work/main/target-before/release/deps/p9_path-ee690de51fb5d21a.d: tests/benches/p9_path.rs

/work/main/target-before/release/deps/p9_path-ee690de51fb5d21a: tests/benches/p9_path.rs

tests/benches/p9_path.rs:
