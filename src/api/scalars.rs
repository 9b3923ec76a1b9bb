//! Custom scalars named as the contract names them (`Date`; `DateTime` and `JSON` come from
//! async-graphql under those names already).

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::NaiveDate;

/// ISO 8601 calendar date, e.g. `2026-01-01`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub NaiveDate);

/// ISO 8601 calendar date, e.g. 2026-01-01.
#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| InputValueError::custom(format!("{s:?} is not a date (YYYY-MM-DD)"))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        // `Display` writes ISO 8601 (`YYYY-MM-DD`) directly; `format("%Y-%m-%d")` parses its
        // pattern on every call, which showed in the profile of a 720-point series.
        Value::String(self.0.to_string())
    }
}

/// Exact decimal, carried as a JSON string (e.g. `"1234.500000"`) so no client parses it into
/// a float. Input also accepts a JSON number, read from its decimal text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal(pub rust_decimal::Decimal);

/// Exact decimal as a JSON string, e.g. "1234.500000" (6 decimal places on output).
#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        let text = match &value {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            _ => return Err(InputValueError::expected_type(value)),
        };
        rust_decimal::Decimal::from_str_exact(&text)
            .map(Decimal)
            .map_err(|_| InputValueError::custom(format!("{text:?} is not a decimal number")))
    }

    fn to_value(&self) -> Value {
        Value::String(crate::domain::modelling::numbers::format_output(self.0))
    }
}
