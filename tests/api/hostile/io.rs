//! Hostile input: io.
