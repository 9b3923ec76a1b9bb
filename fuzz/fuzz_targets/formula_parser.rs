//! The formula parser must return (`Ok` or `Err`) on any input, never panic or overflow the
//! stack; a formula it accepts must print to source that parses back to the same formula.
#![no_main]

use finvision::domain::modelling::formula::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|src: &str| {
    match parse(src) {
        Ok(expr) => {
            let printed = expr.to_string();
            assert_eq!(parse(&printed).as_ref(), Ok(&expr), "{src:?} printed as {printed:?}");
        }
        Err(err) => assert!(err.position <= src.chars().count(), "{src:?}: {err:?}"),
    }
});
