//! The xenstore operations the machines need ([`Store`]) and an in-memory store for tests.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Debug;

/// A xenstore operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// Permission denied (`EACCES`).
    Denied,
    /// Quota exceeded (`EQUOTA`/`ENOSPC`).
    Quota,
    /// Anything else, with the error text.
    Other(String),
}

/// The xenstore operations the machines need. Paths are absolute (`/local/domain/…`) or
/// relative to the caller's home (`device/vbd/768`), exactly as given.
pub trait Store {
    /// Reads a node. `Ok(None)` if it does not exist.
    fn read(&mut self, path: &str) -> Result<Option<String>, StoreError>;
    /// Writes a node, creating parents.
    fn write(&mut self, path: &str, value: &str) -> Result<(), StoreError>;
    /// Lists the children of a node; empty if it does not exist.
    fn directory(&mut self, path: &str) -> Result<Vec<String>, StoreError>;
    /// Removes a node and everything under it; no error if absent.
    fn remove(&mut self, path: &str) -> Result<(), StoreError>;
    /// Registers a watch on `path` (and its subtree) with `token`.
    fn watch(&mut self, path: &str, token: &str) -> Result<(), StoreError>;
    /// Removes a watch registered with the same `path` and `token`.
    fn unwatch(&mut self, path: &str, token: &str) -> Result<(), StoreError>;
}

/// An in-memory [`Store`] for tests and host tools: a flat map of full paths to values, with
/// implicit parents.
#[derive(Debug, Default, Clone)]
pub struct MemStore {
    /// The nodes.
    pub nodes: BTreeMap<String, String>,
    /// Watches registered, as `(path, token)`.
    pub watches: Vec<(String, String)>,
    /// When set, every write fails with this error (fault injection).
    pub fail_writes: Option<StoreError>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a node (test setup).
    pub fn set(&mut self, path: &str, value: &str) {
        self.nodes.insert(path.to_string(), value.to_string());
    }

    /// Reads a node (test inspection).
    pub fn get(&self, path: &str) -> Option<&str> {
        self.nodes.get(path).map(String::as_str)
    }

    /// True if `path` or anything under it exists.
    pub fn exists(&self, path: &str) -> bool {
        let prefix = format!("{path}/");
        self.nodes
            .keys()
            .any(|k| k == path || k.starts_with(&prefix))
    }
}

impl Store for MemStore {
    fn read(&mut self, path: &str) -> Result<Option<String>, StoreError> {
        Ok(self.nodes.get(path).cloned())
    }
    fn write(&mut self, path: &str, value: &str) -> Result<(), StoreError> {
        if let Some(e) = &self.fail_writes {
            return Err(e.clone());
        }
        self.set(path, value);
        Ok(())
    }
    fn directory(&mut self, path: &str) -> Result<Vec<String>, StoreError> {
        let prefix = format!("{path}/");
        let mut out: Vec<String> = Vec::new();
        for k in self.nodes.keys() {
            if let Some(rest) = k.strip_prefix(&prefix) {
                let child = rest.split('/').next().unwrap_or("");
                if !child.is_empty() && out.last().map(String::as_str) != Some(child) {
                    out.push(child.to_string());
                }
            }
        }
        out.dedup();
        Ok(out)
    }
    fn remove(&mut self, path: &str) -> Result<(), StoreError> {
        let prefix = format!("{path}/");
        self.nodes
            .retain(|k, _| k != path && !k.starts_with(&prefix));
        Ok(())
    }
    fn watch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
        self.watches.push((path.to_string(), token.to_string()));
        Ok(())
    }
    fn unwatch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
        self.watches.retain(|(p, t)| p != path || t != token);
        Ok(())
    }
}
