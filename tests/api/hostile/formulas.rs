//! Hostile input: formulas.
