//! Shared helpers for pvfs's acceptance tests.
