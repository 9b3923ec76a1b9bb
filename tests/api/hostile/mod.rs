//! Hostile input: every attack of the hostile-input issue sent through the real router, each
//! refused or bounded, with the work it caused measured against its cap. One file per area.

mod abuse;
mod conformance;
mod document;
mod formulas;
mod io;
mod websocket;
