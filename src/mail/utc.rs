//! Human-readable UTC timestamps for email text, without a date crate.

use crate::clock::{Millis, civil_from_days};

/// `2025-01-31 14:05 UTC`. Minutes are truncated, so an expiry never reads later than it is.
pub fn format_utc(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let (days, secs_of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm) = (secs_of_day / 3600, secs_of_day % 3600 / 60);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02} UTC")
}
