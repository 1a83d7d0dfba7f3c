#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn email(body: &str) -> OutgoingEmail {
    OutgoingEmail {
        to: "ana@example.com".into(),
        subject: "Your code".into(),
        body: body.into(),
        kind: "verification_code",
    }
}

fn stored(id: i64, to: &str, body: &str) -> StoredEmail {
    StoredEmail {
        id,
        kind: "verification_code".into(),
        to: to.into(),
        subject: String::new(),
        body: body.into(),
        attempts: 1,
        created_at: 5,
    }
}

#[test]
fn sealed_text_hides_everything_and_opens_again() {
    let keys = MailKeys::ephemeral();
    let sealed = keys.seal(&email("Verification code: K7P3QX9A\n")).unwrap();
    for clear in ["K7P3QX9A", "ana@example.com", "Your code", "Verification"] {
        assert!(
            !sealed.sealed.contains(clear),
            "{clear} in {}",
            sealed.sealed
        );
    }
    assert!(sealed.sealed.starts_with("v1."));
    let open = keys.open("verification_code", &sealed.sealed).unwrap();
    assert_eq!(open.body, "Verification code: K7P3QX9A\n");
    assert_eq!(open.to, "ana@example.com");
    // Sealing twice never gives the same text (a fresh nonce each time).
    let again = keys.seal(&email("Verification code: K7P3QX9A\n")).unwrap();
    assert_ne!(again.sealed, sealed.sealed);
}

#[test]
fn tampering_another_kind_and_unknown_keys_are_told_apart() {
    let keys = MailKeys::ephemeral();
    let sealed = keys.seal(&email("secret")).unwrap().sealed;
    let mut flipped = sealed.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert!(matches!(
        keys.open("verification_code", &flipped),
        Err(Unreadable::Damaged(_))
    ));
    assert!(matches!(
        keys.open("request_denied", &sealed),
        Err(Unreadable::Damaged(_))
    ));
    assert!(matches!(
        keys.open("verification_code", "v1.00"),
        Err(Unreadable::Damaged(_))
    ));
    let other = MailKeys::ephemeral();
    assert!(matches!(
        other.open("verification_code", &sealed),
        Err(Unreadable::UnknownKey(_))
    ));
}

#[test]
fn a_rotation_seals_with_the_first_key_and_opens_with_any() {
    let old = STANDARD.encode([1u8; KEY_LEN]);
    let new = STANDARD.encode([2u8; KEY_LEN]);
    let before = MailKeys::parse(&old).unwrap();
    let during = MailKeys::parse(&format!("{new}, {old}")).unwrap();
    let after = MailKeys::parse(&new).unwrap();
    let queued_before = before.seal(&email("one")).unwrap().sealed;
    assert_eq!(
        during
            .open("verification_code", &queued_before)
            .unwrap()
            .body,
        "one"
    );
    let queued_during = during.seal(&email("two")).unwrap().sealed;
    assert_eq!(
        after
            .open("verification_code", &queued_during)
            .unwrap()
            .body,
        "two"
    );
    assert!(!format!("{during:?}").contains(&new));
}

#[test]
fn malformed_keys_are_refused() {
    for bad in ["", "not base64!", &STANDARD.encode([0u8; 16]), "a,,b"] {
        assert!(MailKeys::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_dev_key_is_kept_private_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = MailKeys::load_or_create(&data).unwrap();
    let sealed = first.seal(&email("kept")).unwrap().sealed;
    let second = MailKeys::load_or_create(&data).unwrap();
    assert_eq!(
        second.open("verification_code", &sealed).unwrap().body,
        "kept"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data.join(DEV_KEY_FILE)), 0o600);
        assert_eq!(mode(&data), 0o700);
    }
}

#[test]
fn rows_queued_before_sealing_are_delivered_as_they_are() {
    let keys = MailKeys::ephemeral();
    let legacy = keys.open_stored(stored(1, "ana@example.com", "plain body"));
    assert_eq!(legacy.content.unwrap().body, "plain body");
    let sealed = keys.seal(&email("sealed body")).unwrap().sealed;
    let row = keys.open_stored(stored(2, "", &sealed));
    assert_eq!(row.content.unwrap().body, "sealed body");
    assert!(keys.open_stored(stored(3, "", "plain")).content.is_err());
}
