//! Consistency tokens (`v2.<database>.<revision>`) as every RPC that takes one decodes them:
//! `grpc::args::consistency_token`, over `domain::feed::decode_token`.
#![no_main]

use entitlements::domain::feed::{decode_token, encode_token};
use entitlements::grpc::args::consistency_token;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match consistency_token("consistency_token", s) {
        Ok(None) => assert!(s.is_empty()),
        Ok(Some(t)) => {
            assert_eq!(decode_token(s).as_ref(), Some(&t));
            // Only what we could have given out: a named database and a revision >= 0.
            assert!(!t.database.is_empty() && t.database.len() <= 32);
            assert!(t.database.bytes().all(|b| b.is_ascii_alphanumeric()));
            assert!(t.revision >= 0);
            // What we give out for it reads back as the same position.
            assert_eq!(
                decode_token(&encode_token(&t.database, t.revision)),
                Some(t)
            );
        }
        Err(status) => {
            assert!(!s.is_empty());
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(decode_token(s).is_none());
        }
    }
});
