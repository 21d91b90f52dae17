//! xenstore wire codec.
