//! Numbers as stored: `numeric(20,6)`; values leave the API rounded half-even to 6 places.

use rust_decimal::Decimal;

use crate::error::{AppError, AppResult};

/// Largest magnitude `numeric(20,6)` holds: 14 integer digits.
const LIMIT: Decimal = Decimal::from_parts(0x107A_4000, 0x0000_5AF3, 0, false, 0); // 10^14

/// Decimal places stored and shown.
pub const SCALE: u32 = 6;

/// Require a value `numeric(20,6)` can hold exactly: at most 14 integer digits and 6 decimals.
pub fn check_stored(value: Decimal, field: &str) -> AppResult<Decimal> {
    let normalized = value.normalize();
    if normalized.scale() > SCALE || normalized.abs() >= LIMIT {
        return Err(AppError::bad_input(
            field,
            format!(
                "{value} does not fit numeric(20,6): at most 14 digits before the point and 6 after"
            ),
        ));
    }
    Ok(normalized)
}

/// The wire form: rounded half-even, always 6 decimals (`"12.500000"`), never `-0.000000`.
pub fn format_output(value: Decimal) -> String {
    super::formula::round_output(value).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn limits_of_numeric_20_6() {
        assert_eq!(LIMIT, d("100000000000000"));
        assert!(check_stored(d("99999999999999.999999"), "v").is_ok());
        assert!(check_stored(d("100000000000000"), "v").is_err());
        assert!(check_stored(d("0.0000001"), "v").is_err());
        assert!(check_stored(d("1.500000000"), "v").is_ok());
    }

    #[test]
    fn output_is_half_even_with_six_places() {
        assert_eq!(format_output(d("2") / d("3")), "0.666667");
        assert_eq!(format_output(d("0.0000005")), "0.000000");
        assert_eq!(format_output(d("0.0000015")), "0.000002");
        assert_eq!(format_output(d("12.5")), "12.500000");
        assert_eq!(format_output(d("-0.0000001")), "0.000000");
    }
}
