/work/main/target-before/release/deps/filetime-21d80ef604966269.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/filetime-0.2.29/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/filetime-0.2.29/src/unix/mod.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/filetime-0.2.29/src/unix/utimes.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/filetime-0.2.29/src/unix/linux.rs

/work/main/target-before/release/deps/libfiletime-21d80ef604966269.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/filetime-0.2.29/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/filetime-0.2.29/src/unix/mod.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/filetime-0.2.29/src/unix/utimes.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/filetime-0.2.29/src/unix/linux.rs

/work/main/target-before/release/deps/libfiletime-21d80ef604966269.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/filetime-0.2.29/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/filetime-0.2.29/src/unix/mod.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/filetime-0.2.29/src/unix/utimes.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/filetime-0.2.29/src/unix/linux.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/filetime-0.2.29/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/filetime-0.2.29/src/unix/mod.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/filetime-0.2.29/src/unix/utimes.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/filetime-0.2.29/src/unix/linux.rs:
