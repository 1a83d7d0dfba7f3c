//! When an account's Site Technical Contacts are warned that its contracts end. The sweep's
//! query finds candidates; this rule decides, under the account's lock, so that a renewal or a
//! suspension that came in between is honoured.

use super::model::{AccountStatus, Contract};
use crate::clock::Millis;

/// The end of the last of `contracts` not yet ended at `now`: what a warning is about.
pub fn last_end(contracts: &[Contract], now: Millis) -> Option<Millis> {
    contracts
        .iter()
        .map(|c| c.ends_at)
        .filter(|&e| e > now)
        .max()
}

/// Whether the warning that the contracts end at `end` is due at `now`: the account is
/// active, `end` is still the last end of its contracts in force (a renewal moves it), and it
/// is at most `warning_ms` away. Being late does not cancel it: a warning that fell due while
/// no sweep ran goes out when one does.
pub fn end_warning_due(
    account: AccountStatus,
    contracts: &[Contract],
    end: Millis,
    warning_ms: Millis,
    now: Millis,
) -> bool {
    account == AccountStatus::Active
        && last_end(contracts, now) == Some(end)
        && end.saturating_sub(warning_ms) <= now
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ContractId, Icn};

    const DAY: Millis = 86_400_000;

    fn ending(at: Millis) -> Contract {
        Contract {
            icn: Icn::parse("1234567").unwrap(),
            contract_id: ContractId::parse(&format!("C-{at}")).unwrap(),
            product_ids: Vec::new(),
            starts_at: 0,
            ends_at: at,
            includes_24x7: false,
            updated_at: 0,
        }
    }

    #[test]
    fn the_last_end_is_the_latest_of_those_in_force() {
        let contracts = [ending(100 * DAY), ending(300 * DAY), ending(200 * DAY)];
        assert_eq!(last_end(&contracts, 0), Some(300 * DAY));
        assert_eq!(last_end(&contracts, 300 * DAY - 1), Some(300 * DAY));
        // An end is exclusive: at it, the contract is over.
        assert_eq!(last_end(&contracts, 300 * DAY), None);
        assert_eq!(last_end(&[], 0), None);
    }

    #[test]
    fn a_warning_is_due_from_its_instant_until_the_end() {
        use AccountStatus::{Active, Suspended};
        let end = 400 * DAY;
        let contracts = [ending(end), ending(100 * DAY)];
        let due = |account, now| end_warning_due(account, &contracts, end, 30 * DAY, now);
        assert!(!due(Active, end - 30 * DAY - 1), "a millisecond early");
        assert!(due(Active, end - 30 * DAY), "at its instant");
        assert!(due(Active, end - 5 * DAY), "late, as after an outage");
        assert!(
            !due(Active, end),
            "the contracts ended: nothing left to warn of"
        );
        assert!(!due(Suspended, end - 30 * DAY), "a suspended account");
        // Renewed: the end the sweep found is no longer the last.
        let renewed = [ending(end), ending(end + 90 * DAY)];
        assert!(!end_warning_due(
            Active,
            &renewed,
            end,
            30 * DAY,
            end - 30 * DAY
        ));
        assert!(end_warning_due(
            Active,
            &renewed,
            end + 90 * DAY,
            30 * DAY,
            end + 60 * DAY
        ));
    }
}
