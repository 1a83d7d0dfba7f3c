//! RFC 3339 timestamps for `entitlements ctl`: parsing what a person types
//! (`2025-01-31T00:00:00Z`, `...+02:00`, `now`, `now+365d`, `now-1d`, `now+12h`) and printing
//! what the service answers (always UTC, `Z`).

use prost_types::Timestamp;
use time::format_description::StaticFormatDescription;
use time::macros::format_description;
use time::{Date, Month, OffsetDateTime, SignedDuration, Time, UtcOffset};

const SECS_PER_DAY: i64 = 86_400;

// A fraction only when there is one, in whole groups of three digits, as protobuf's JSON
// mapping prints timestamps.
const WHOLE: StaticFormatDescription =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
const MILLIS: StaticFormatDescription =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
const MICROS: StaticFormatDescription =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
const NANOS: StaticFormatDescription =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");

/// `2025-01-31T14:05:00Z`; fractional seconds only when there are some.
pub fn format_rfc3339(ts: &Timestamp) -> String {
    let nanos = ts.nanos.clamp(0, 999_999_999);
    let format = if nanos == 0 {
        WHOLE
    } else if nanos % 1_000_000 == 0 {
        MILLIS
    } else if nanos % 1000 == 0 {
        MICROS
    } else {
        NANOS
    };
    OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(ts.seconds) * 1_000_000_000 + i128::from(nanos),
    )
    .ok()
    .and_then(|t| t.format(format).ok())
    // Only past the year 9999, which the service never sends (it takes years 1-9999, as
    // google.protobuf.Timestamp does); the raw value beats an invented date.
    .unwrap_or_else(|| format!("{}s after 1970-01-01T00:00:00Z", ts.seconds))
}

/// Parses `now`, `now+Nd`, `now-Nd`, `now+Nh`, `now+Nm`, `now+Ns` (relative to `now_secs`,
/// seconds since the Unix epoch) or an RFC 3339 timestamp with `Z` or a `+HH:MM`/`-HH:MM` offset.
pub fn parse_time(s: &str, now_secs: i64) -> Result<Timestamp, String> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix("now") {
        let offset = parse_relative(rest).ok_or_else(|| {
            format!("`{s}`: expected now, now+Nd, now-Nd, now+Nh, now+Nm or now+Ns")
        })?;
        return OffsetDateTime::from_unix_timestamp(now_secs)
            .ok()
            .and_then(|now| now.checked_add(offset))
            .map(timestamp)
            .ok_or_else(|| format!("`{s}`: out of range"));
    }
    parse_rfc3339(s).map(timestamp).ok_or_else(|| {
        format!("`{s}`: expected RFC 3339 (e.g. 2025-01-31T00:00:00Z or 2025-01-31T09:00:00+02:00), now, or now+365d")
    })
}

fn timestamp(t: OffsetDateTime) -> Timestamp {
    Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

/// `""`, `+3d`, `-12h`, ...
fn parse_relative(rest: &str) -> Option<SignedDuration> {
    if rest.is_empty() {
        return Some(SignedDuration::ZERO);
    }
    let (sign, rest) = match rest.as_bytes().first()? {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let unit = match rest.chars().last()? {
        'd' => SECS_PER_DAY,
        'h' => 3600,
        'm' => 60,
        's' => 1,
        _ => return None,
    };
    let n: i64 = digits(&rest[..rest.len() - 1])?;
    n.checked_mul(unit * sign).map(SignedDuration::seconds)
}

/// Only ASCII digits: `str::parse` would also take a sign.
fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`; `t`/`z` and a space for `T` are accepted.
// Not `time`'s own RFC 3339 parser: that one takes any character between date and time, takes
// more than nine fraction digits (dropping the rest), and refuses a `:60` that is not a real
// leap second, all of which `ctl` has always answered differently. `time` still checks the
// calendar (days per month, leap years) and does the arithmetic.
fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    if !s.is_ascii() || s.len() < 20 {
        return None;
    }
    let b = s.as_bytes();
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let month = Month::try_from(digits::<u8>(&s[5..7])?).ok()?;
    let date = Date::from_calendar_date(digits(&s[0..4])?, month, digits(&s[8..10])?).ok()?;
    let second: u8 = digits(&s[17..19])?;
    if second > 60 {
        return None;
    }

    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let len = frac.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 || len > 9 {
            return None;
        }
        let scaled = format!("{:0<9}", &frac[..len]);
        nanos = scaled.parse().ok()?;
        rest = &frac[len..];
    }
    // A Timestamp has no leap seconds: :60 reads as :59, whatever the day.
    let time = Time::from_hms_nano(
        digits(&s[11..13])?,
        digits(&s[14..16])?,
        second.min(59),
        nanos,
    )
    .ok()?;
    let offset = match rest {
        "Z" | "z" => UtcOffset::UTC,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || rb[3] != b':' {
                return None;
            }
            let sign = match rb[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            // RFC 3339 offsets end at 23:59; `time` would take up to 25:59:59.
            let oh: i8 = digits(&rest[1..3]).filter(|h| *h <= 23)?;
            let om: i8 = digits(&rest[4..6])?;
            UtcOffset::from_hms(sign * oh, sign * om, 0).ok()?
        }
    };
    Some(OffsetDateTime::new_in_offset(date, time, offset))
}

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test fails
mod tests {
    use super::*;

    fn ts(seconds: i64, nanos: i32) -> Timestamp {
        Timestamp { seconds, nanos }
    }

    #[test]
    fn civil_round_trips() {
        let day = |days: i64| ts(days * 86_400, 0);
        assert_eq!(parse_time("1970-01-01T00:00:00Z", 0).unwrap(), day(0));
        assert_eq!(parse_time("2000-03-01T00:00:00Z", 0).unwrap(), day(11_017));
        assert_eq!(format_rfc3339(&day(-1)), "1969-12-31T00:00:00Z");
        assert_eq!(format_rfc3339(&day(19_782)), "2024-02-29T00:00:00Z");
        // From 0000-01-01, the first day a four-digit year can name.
        for days in (-719_528..800_000).step_by(97) {
            let printed = format_rfc3339(&day(days));
            assert_eq!(parse_time(&printed, 0).unwrap(), day(days), "{printed}");
        }
    }

    #[test]
    fn formats_utc() {
        assert_eq!(format_rfc3339(&ts(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(&ts(1_709_164_800, 0)),
            "2024-02-29T00:00:00Z"
        );
        assert_eq!(
            format_rfc3339(&ts(1_738_332_300, 0)),
            "2025-01-31T14:05:00Z"
        );
        assert_eq!(format_rfc3339(&ts(-1, 0)), "1969-12-31T23:59:59Z");
        assert_eq!(
            format_rfc3339(&ts(1_738_332_300, 120_000_000)),
            "2025-01-31T14:05:00.120Z"
        );
        assert_eq!(
            format_rfc3339(&ts(0, 1_500)),
            "1970-01-01T00:00:00.000001500Z"
        );
    }

    #[test]
    fn parses_rfc3339() {
        let p = |s| parse_time(s, 0).unwrap();
        assert_eq!(p("2025-01-31T14:05:00Z"), ts(1_738_332_300, 0));
        assert_eq!(p("2025-01-31t14:05:00z"), ts(1_738_332_300, 0));
        assert_eq!(p("2025-01-31 14:05:00Z"), ts(1_738_332_300, 0));
        assert_eq!(p("2025-01-31T16:05:00+02:00"), ts(1_738_332_300, 0));
        assert_eq!(p("2025-01-31T09:35:00-04:30"), ts(1_738_332_300, 0));
        assert_eq!(p("2025-01-31T14:05:00.25Z"), ts(1_738_332_300, 250_000_000));
        assert_eq!(p("2024-02-29T00:00:00Z"), ts(1_709_164_800, 0));
        assert_eq!(p("1969-12-31T23:59:59Z"), ts(-1, 0));
        for t in ["2025-01-31T14:05:00Z", "2024-02-29T23:59:59.5Z"] {
            assert_eq!(format_rfc3339(&p(t)), t.replace(".5Z", ".500Z"));
        }
    }

    #[test]
    fn rejects_bad_timestamps() {
        for bad in [
            "",
            "2025-01-31",
            "2025-01-31T14:05:00",
            "2025-01-31T14:05Z",
            "2025-02-29T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-01-32T00:00:00Z",
            "2025-01-31T24:00:00Z",
            "2025-01-31T14:05:00+0200",
            "2025-01-31T14:05:00.Z",
            "2025-01-31T14:05:00.1234567890Z",
            "2025-01-31T14:05:00+2:00",
            "+025-01-31T14:05:00Z",
            "now+",
            "now+d",
            "now+3w",
            "now3d",
            "now+-3d",
            "yesterday",
        ] {
            assert!(parse_time(bad, 0).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn parses_relative_to_now() {
        let now = 1_738_332_300;
        let p = |s| parse_time(s, now).unwrap().seconds;
        assert_eq!(p("now"), now);
        assert_eq!(p(" now "), now);
        assert_eq!(p("now+365d"), now + 365 * 86_400);
        assert_eq!(p("now-1d"), now - 86_400);
        assert_eq!(p("now+12h"), now + 12 * 3600);
        assert_eq!(p("now-30m"), now - 1800);
        assert_eq!(p("now+5s"), now + 5);
        assert!(parse_time("now+99999999999999999999d", now).is_err());
    }
}
