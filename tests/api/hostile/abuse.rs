//! Hostile input: abuse.
