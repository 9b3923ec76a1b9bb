//! Hostile input: document.
