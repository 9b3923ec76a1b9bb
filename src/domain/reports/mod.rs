//! Reports: a model's evaluated series (one or more scenarios) exported as a CSV or XLSX file,
//! generated off the request path by a bounded queue of jobs and kept in the object store.
//!
//! The content is what `series` computes (`modelling::series`), gathered in [`content`] and
//! written by [`csv`] or [`xlsx`]; [`service`] validates a request, records it (with its audit
//! event) and queues it; [`jobs`] runs the queue, stores the file and settles the row.

pub mod content;
pub mod csv;
pub mod jobs;
pub mod loaders;
pub mod rows;
pub mod service;
pub mod xlsx;

pub use jobs::ReportQueue;
pub use rows::{ReportFormat, ReportRow, ReportStatus};
