//! Wall-clock times as the reports and changelogs write them (UTC), and the rounding of
//! durations to milliseconds that every recorded timing uses.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::macros::format_description;
use time::OffsetDateTime;

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Seconds, rounded to the millisecond, as reports record durations and instants.
pub fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// [`round_ms`] of a duration.
pub fn duration_ms(d: Duration) -> f64 {
    round_ms(d.as_secs_f64())
}

fn utc_of(unix: f64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix.max(0.0) as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `YYYYMMDD-HHMMSS`, for report folder names.
pub fn folder_timestamp(unix: f64) -> String {
    utc_of(unix)
        .format(format_description!(
            "[year][month][day]-[hour][minute][second]"
        ))
        .unwrap_or_default()
}

/// `YYYY-MM-DD HH:MM:SS UTC`, for people.
pub fn utc(unix: f64) -> String {
    utc_of(unix)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
        ))
        .unwrap_or_default()
}

/// RFC 3339 (`2026-12-02T05:40:00Z`), as image configs record times.
pub fn rfc3339(unix: f64) -> String {
    utc_of(unix)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `YYYY-MM-DD`, for changelog rows.
pub fn date(unix: f64) -> String {
    utc_of(unix)
        .format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// Today's [`date`].
pub fn today() -> String {
    date(unix_now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(folder_timestamp(0.0), "19700101-000000");
        assert_eq!(folder_timestamp(1_795_255_383.9), "20261121-100303");
        assert_eq!(folder_timestamp(951_782_400.0), "20000229-000000");
        assert_eq!(utc(1_795_255_383.9), "2026-11-21 10:03:03 UTC");
        let day = 86_400.0;
        assert_eq!(date(0.0), "1970-01-01");
        assert_eq!(date(19_723.0 * day), "2024-01-01");
        assert_eq!(round_ms(1.23456), 1.235);
    }
}
