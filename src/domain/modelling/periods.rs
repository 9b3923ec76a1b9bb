//! A model's timeline: periods are the first day of their month, quarter or year.

use chrono::{Datelike, Months, NaiveDate};

use super::enums::PeriodGranularity;
use crate::error::{AppError, AppResult};

/// Longest timeline accepted (50 years of months): bounds the work of one evaluation.
pub const MAX_PERIODS: usize = 600;

fn step(granularity: PeriodGranularity) -> Months {
    Months::new(match granularity {
        PeriodGranularity::Month => 1,
        PeriodGranularity::Quarter => 3,
        PeriodGranularity::Year => 12,
    })
}

/// Whether `date` starts a period of `granularity`.
pub fn is_boundary(date: NaiveDate, granularity: PeriodGranularity) -> bool {
    date.day() == 1
        && match granularity {
            PeriodGranularity::Month => true,
            PeriodGranularity::Quarter => (date.month() - 1).is_multiple_of(3),
            PeriodGranularity::Year => date.month() == 1,
        }
}

/// Require `date` to start a period; `field` names the input.
pub fn check_boundary(
    date: NaiveDate,
    granularity: PeriodGranularity,
    field: &str,
) -> AppResult<()> {
    if is_boundary(date, granularity) {
        return Ok(());
    }
    let what = match granularity {
        PeriodGranularity::Month => "the first day of a month",
        PeriodGranularity::Quarter => "the first day of a quarter (Jan, Apr, Jul or Oct 1)",
        PeriodGranularity::Year => "January 1",
    };
    Err(AppError::bad_input(
        field,
        format!("{date} is not a period start: use {what}"),
    ))
}

/// Every period from `start` to `end` inclusive.
pub fn periods(start: NaiveDate, end: NaiveDate, granularity: PeriodGranularity) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    let mut current = start;
    while current <= end && out.len() <= MAX_PERIODS {
        out.push(current);
        match current.checked_add_months(step(granularity)) {
            Some(next) => current = next,
            None => break,
        }
    }
    out
}

/// Validate a timeline: both ends on boundaries, in order, at most [`MAX_PERIODS`] long.
pub fn check_timeline(
    start: NaiveDate,
    end: NaiveDate,
    granularity: PeriodGranularity,
    start_field: &str,
    end_field: &str,
) -> AppResult<()> {
    check_boundary(start, granularity, start_field)?;
    check_boundary(end, granularity, end_field)?;
    if end < start {
        return Err(AppError::bad_input(
            end_field,
            "the timeline must end on or after its start",
        ));
    }
    if periods(start, end, granularity).len() > MAX_PERIODS {
        return Err(AppError::bad_input(
            end_field,
            format!("a timeline has at most {MAX_PERIODS} periods"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn boundaries_and_periods() {
        assert!(is_boundary(d("2026-04-01"), PeriodGranularity::Quarter));
        assert!(!is_boundary(d("2026-05-01"), PeriodGranularity::Quarter));
        assert!(!is_boundary(d("2026-01-02"), PeriodGranularity::Month));
        assert_eq!(
            periods(d("2026-01-01"), d("2026-12-01"), PeriodGranularity::Month).len(),
            12
        );
        assert_eq!(
            periods(d("2026-01-01"), d("2027-10-01"), PeriodGranularity::Quarter).len(),
            8
        );
        assert!(
            check_timeline(
                d("2026-01-01"),
                d("2025-01-01"),
                PeriodGranularity::Year,
                "s",
                "e"
            )
            .is_err()
        );
        assert!(
            check_timeline(
                d("2000-01-01"),
                d("2099-12-01"),
                PeriodGranularity::Month,
                "s",
                "e"
            )
            .is_err()
        );
    }
}
