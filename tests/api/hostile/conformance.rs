//! Hostile input: conformance.
