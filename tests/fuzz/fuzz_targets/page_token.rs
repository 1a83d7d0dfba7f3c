//! Page tokens of the three paged lists (access requests, members, audit events), decoded as
//! the handlers decode them (`grpc::args`), and the tokens the lists give out read back.
#![no_main]

use entitlements::domain::{AccessRequestId, WebId};
use entitlements::grpc::args::{AUDIT, MEMBERS, REQUESTS};
use entitlements::grpc::convert::{page_token_in, page_token_out};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let requests = page_token_in(REQUESTS, token, |k| AccessRequestId::parse(k).ok());
    let members = page_token_in(MEMBERS, token, |k| WebId::parse(k).ok());
    let audit = page_token_in(AUDIT, token, |k| k.parse::<i64>().ok());
    if token.is_empty() {
        assert!(matches!(
            (&requests, &members, &audit),
            (Ok(None), Ok(None), Ok(None))
        ));
        return;
    }
    // A token belongs to one list at most.
    let accepted = [requests.is_ok(), members.is_ok(), audit.is_ok()];
    assert!(accepted.iter().filter(|a| **a).count() <= 1, "{token:?}");
    for e in [
        &requests.as_ref().err(),
        &members.as_ref().err(),
        &audit.as_ref().err(),
    ]
    .into_iter()
    .flatten()
    {
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
    }
    // What the list gives out for the position read is the same position.
    if let Ok(Some(id)) = requests {
        let again = page_token_out(REQUESTS, Some(id.to_string()));
        let back = page_token_in(REQUESTS, &again, |k| AccessRequestId::parse(k).ok());
        assert_eq!(back.ok().flatten(), Some(id));
    }
    if let Ok(Some(w)) = members {
        let again = page_token_out(MEMBERS, Some(w.to_string()));
        let back = page_token_in(MEMBERS, &again, |k| WebId::parse(k).ok());
        assert_eq!(back.ok().flatten(), Some(w));
    }
    if let Ok(Some(n)) = audit {
        let again = page_token_out(AUDIT, Some(n.to_string()));
        let back = page_token_in(AUDIT, &again, |k| k.parse::<i64>().ok());
        assert_eq!(back.ok().flatten(), Some(n));
    }
});
