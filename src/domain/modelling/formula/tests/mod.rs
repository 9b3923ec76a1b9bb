//! Tests of the formula engine: the parser, the analysis, a hand-computed model, and properties.

mod analysis;
mod limits;
mod model;
mod parser;
mod props;
