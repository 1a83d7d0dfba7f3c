//! AuthZEN request bodies through the HTTP door's own parsers (`http::args`): the body as JSON,
//! then as an Access Evaluation, an Access Evaluations and a Resource Search request.
#![no_main]

use entitlements::domain::Icn;
use entitlements::http::args::{self, Evaluations, FieldError, Kind};
use libfuzzer_sys::fuzz_target;

/// A refusal names a field, and its message (as the error body shows it) starts there.
fn named(e: &FieldError) {
    assert!(!e.field.is_empty(), "{e:?}");
    assert!(!e.message.is_empty(), "{e:?}");
}

fuzz_target!(|data: &[u8]| {
    let m = match args::body(data) {
        Ok(m) => m,
        Err(e) => {
            assert_eq!((e.field.as_str(), e.kind), ("body", Kind::Shape));
            return;
        }
    };
    if let Err(e) = args::evaluation(&m) {
        named(&e);
    }
    match args::evaluations(&m) {
        Err(e) => named(&e),
        Ok(Evaluations::Single(_)) => {}
        Ok(Evaluations::Many { items, .. }) => {
            assert!(!items.is_empty() && items.len() <= args::MAX_EVALUATIONS);
            // Only values fail an item alone, and the field named is that item's own.
            for (i, item) in items.iter().enumerate() {
                if let Err(e) = item {
                    assert_eq!(e.kind, Kind::Value, "{e:?}");
                    assert!(e.field.starts_with(&format!("evaluations[{i}].")), "{e:?}");
                }
            }
        }
    }
    match args::resource_search(&m) {
        Err(e) => named(&e),
        Ok(q) => {
            assert!((1..=args::MAX_LIMIT).contains(&q.search.limit));
            // The token of the next page continues this very search.
            let Ok(last) = Icn::parse("1234567") else {
                return;
            };
            let mut next = m.clone();
            let page = next
                .entry("page")
                .or_insert_with(|| serde_json::json!({}));
            if let Some(p) = page.as_object_mut() {
                p.insert("token".into(), q.next_token(&last).into());
                let again = args::resource_search(&next).expect("its own token");
                assert_eq!(again.search.after, Some(last));
            }
        }
    }
});
