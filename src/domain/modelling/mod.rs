pub mod formula;
