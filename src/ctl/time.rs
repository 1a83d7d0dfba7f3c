//! RFC 3339 timestamps for `entitlements ctl`, without a date crate: parsing what a person
//! types (`2025-01-31T00:00:00Z`, `...+02:00`, `now`, `now+365d`, `now-1d`, `now+12h`) and
//! printing what the service answers (always UTC, `Z`).

use prost_types::Timestamp;

const SECS_PER_DAY: i64 = 86_400;

pub use crate::clock::{civil_from_days, days_from_civil};

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `2025-01-31T14:05:00Z`; fractional seconds only when there are some.
pub fn format_rfc3339(ts: &Timestamp) -> String {
    let secs = ts.seconds;
    let (days, sod) = (secs.div_euclid(SECS_PER_DAY), secs.rem_euclid(SECS_PER_DAY));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (sod / 3600, sod % 3600 / 60, sod % 60);
    let nanos = ts.nanos.clamp(0, 999_999_999);
    let frac = if nanos == 0 {
        String::new()
    } else if nanos % 1_000_000 == 0 {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos % 1000 == 0 {
        format!(".{:06}", nanos / 1000)
    } else {
        format!(".{nanos:09}")
    };
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}{frac}Z")
}

/// Parses `now`, `now+Nd`, `now-Nd`, `now+Nh`, `now+Nm`, `now+Ns` (relative to `now_secs`,
/// seconds since the Unix epoch) or an RFC 3339 timestamp with `Z` or a `+HH:MM`/`-HH:MM` offset.
pub fn parse_time(s: &str, now_secs: i64) -> Result<Timestamp, String> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix("now") {
        let offset = parse_relative(rest).ok_or_else(|| {
            format!("`{s}`: expected now, now+Nd, now-Nd, now+Nh, now+Nm or now+Ns")
        })?;
        let seconds = now_secs
            .checked_add(offset)
            .ok_or_else(|| format!("`{s}`: out of range"))?;
        return Ok(Timestamp { seconds, nanos: 0 });
    }
    parse_rfc3339(s).ok_or_else(|| {
        format!("`{s}`: expected RFC 3339 (e.g. 2025-01-31T00:00:00Z or 2025-01-31T09:00:00+02:00), now, or now+365d")
    })
}

/// `""`, `+3d`, `-12h`, ... as seconds.
fn parse_relative(rest: &str) -> Option<i64> {
    if rest.is_empty() {
        return Some(0);
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
    let digits = &rest[..rest.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok()?.checked_mul(unit * sign)
}

fn number(s: &str, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|n| range.contains(n))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`; `t`/`z` and a space for `T` are accepted.
fn parse_rfc3339(s: &str) -> Option<Timestamp> {
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
    let y = number(&s[0..4], 0..=9999)?;
    let m = number(&s[5..7], 1..=12)?;
    let d = number(&s[8..10], 1..=days_in_month(y, m))?;
    let hh = number(&s[11..13], 0..=23)?;
    let mi = number(&s[14..16], 0..=59)?;
    let ss = number(&s[17..19], 0..=60)?.min(59); // a leap second reads as :59

    let mut rest = &s[19..];
    let mut nanos = 0i32;
    if let Some(frac) = rest.strip_prefix('.') {
        let len = frac.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 || len > 9 {
            return None;
        }
        let digits = &frac[..len];
        let scaled = format!("{digits:0<9}");
        nanos = scaled.parse().ok()?;
        rest = &frac[len..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
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
            let oh = number(&rest[1..3], 0..=23)?;
            let om = number(&rest[4..6], 0..=59)?;
            sign * (oh * 3600 + om * 60)
        }
    };
    let seconds = days_from_civil(y, m, d) * SECS_PER_DAY + hh * 3600 + mi * 60 + ss - offset;
    Some(Timestamp { seconds, nanos })
}

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
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
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
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
