//! Tests of the formula engine: the parser, the analysis, recursion across periods, a
//! hand-computed model, and properties.

mod analysis;
mod cycles;
mod limits;
mod model;
mod parser;
mod props;
