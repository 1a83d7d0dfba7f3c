//! Human-readable UTC timestamps for email text.

use time::OffsetDateTime;
use time::format_description::StaticFormatDescription;
use time::macros::format_description;

use crate::clock::Millis;

// No seconds: leaving them out truncates to the minute, so an expiry never reads later than it is.
const EMAIL_UTC: StaticFormatDescription =
    format_description!("[year]-[month]-[day] [hour]:[minute] UTC");

/// `2025-01-31 14:05 UTC`. Minutes are truncated, so an expiry never reads later than it is.
pub fn format_utc(ms: Millis) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(EMAIL_UTC).ok())
        // Only past the year 9999, which no expiry reaches; the raw value is still the truth.
        .unwrap_or_else(|| format!("{ms} ms after 1970-01-01 00:00 UTC"))
}
