//! How often a person may ask for access to one account. A request/withdraw loop would
//! otherwise email the account's administrators once per turn, under a display name of the
//! requester's choosing, from the trusted sender.

use crate::clock::Millis;

/// The window the pace of one person's requests for one account is judged over.
pub const REQUEST_WINDOW_MS: Millis = 24 * 3600 * 1000;
/// Requests one person may make for one account within the window.
pub const REQUESTS_PER_WINDOW: usize = 5;

/// What a new request of a person for an account may do, given when they made their earlier
/// requests for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestPace {
    /// The first in the window: the administrators are told.
    First,
    /// Another within the window: it stands, but the administrators, told of the first, are
    /// not emailed again.
    Repeat,
    /// Too many: refused until the oldest in the window leaves it.
    TooSoon { retry_after_ms: Millis },
}

/// `earlier`: creation times of the person's requests for the account, any order.
pub fn request_pace(earlier: &[Millis], now: Millis) -> RequestPace {
    let window_start = now - REQUEST_WINDOW_MS;
    let mut recent: Vec<Millis> = earlier
        .iter()
        .copied()
        .filter(|t| *t > window_start)
        .collect();
    recent.sort_unstable();
    match recent.len() {
        0 => RequestPace::First,
        n if n < REQUESTS_PER_WINDOW => RequestPace::Repeat,
        n => {
            // The request that must leave the window for this one to fit.
            let oldest = recent[n - REQUESTS_PER_WINDOW];
            RequestPace::TooSoon {
                retry_after_ms: (oldest + REQUEST_WINDOW_MS - now).max(1),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Millis = 3600 * 1000;

    #[test]
    fn the_first_in_a_day_is_announced_the_next_are_quiet_then_refused() {
        let now = 100 * H;
        assert_eq!(request_pace(&[], now), RequestPace::First);
        // A request older than the window does not count.
        assert_eq!(request_pace(&[now - 24 * H], now), RequestPace::First);
        assert_eq!(request_pace(&[now - 24 * H + 1], now), RequestPace::Repeat);
        let four = [now - 5 * H, now - 4 * H, now - 3 * H, now - 2 * H];
        assert_eq!(request_pace(&four, now), RequestPace::Repeat);
        let five = [now - 2 * H, now - 5 * H, now - 4 * H, now - 3 * H, now - H];
        assert_eq!(
            request_pace(&five, now),
            RequestPace::TooSoon {
                retry_after_ms: 19 * H
            }
        );
        // With more than the limit in the window, the wait is until enough have left it.
        let six = [
            now - 6 * H,
            now - 5 * H,
            now - 4 * H,
            now - 3 * H,
            now - 2 * H,
            now - H,
        ];
        assert_eq!(
            request_pace(&six, now),
            RequestPace::TooSoon {
                retry_after_ms: 19 * H
            }
        );
    }
}
