//! Tests of the request guard.
