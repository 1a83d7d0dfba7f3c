//! Sealed outbox messages. A verification email carries its code in clear, and the outbox row
//! that waits for delivery is in the database (and so in SQLite's file, its WAL, freed pages,
//! backups). So the service seals every message before it is written: recipient, subject and
//! body, encrypted and authenticated with ChaCha20-Poly1305 under a key from configuration
//! (`--mail-key`), and the worker opens it just before delivery. Rendering at delivery time
//! from non-secret data instead would still need the code then, which exists only when it is
//! issued: it would have to be stored, which is what sealing avoids.
//!
//! Stored form: `v1.<key id>.<base64url(nonce | ciphertext | tag)>`, with the message kind as
//! associated data. The key id (a hash prefix of the key, not the key) lets several keys be
//! configured during a rotation: the first seals, all open.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use rand::rngs::OsRng;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{OutgoingEmail, QueuedEmail, SealedEmail, StoredEmail};
use crate::private_fs;

pub const KEY_LEN: usize = 32;
const VERSION: &str = "v1";
/// The dev default, kept under `--data-dir` (mode 0600) so queued mail survives a restart.
pub const DEV_KEY_FILE: &str = "dev-mail-key";

/// The keys that seal and open outbox messages; the first seals.
pub struct MailKeys {
    keys: Vec<MailKey>,
}

struct MailKey {
    id: String,
    key: LessSafeKey,
}

impl std::fmt::Debug for MailKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The ids only: they name keys without revealing them.
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("MailKeys").field("ids", &ids).finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "a mail key is the base64 of {KEY_LEN} random bytes (make one with `openssl rand -base64 32`); several are separated by commas"
    )]
    Malformed,
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Sealing failed: no key, or a message far beyond any email's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sealing an email failed: {0}")]
pub struct SealError(&'static str);

/// Why a claimed message cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// Sealed under a key this replica does not hold (a rotation under way, or a replica
    /// configured differently): another replica may open it, so it is retried.
    #[error("sealed with mail key {0}, which this replica does not have")]
    UnknownKey(String),
    /// Altered or cut short: no key opens it, ever.
    #[error("the sealed message is damaged ({0})")]
    Damaged(&'static str),
}

/// What the worker needs to deliver a message; never stored in clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailContent {
    pub to: String,
    pub subject: String,
    pub body: String,
}

impl MailKey {
    fn new(raw: &[u8]) -> Result<Self, KeyError> {
        let key = UnboundKey::new(&CHACHA20_POLY1305, raw).map_err(|_| KeyError::Malformed)?;
        let mut h = Sha256::new();
        h.update(b"entitlements mail key id\0");
        h.update(raw);
        let id = h.finalize()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            id,
            key: LessSafeKey::new(key),
        })
    }
}

fn aad(kind: &str) -> String {
    format!("entitlements outbox {VERSION} {kind}")
}

impl MailKeys {
    /// `--mail-key`: one base64 key, or several separated by commas (the first seals).
    pub fn parse(spec: &str) -> Result<Self, KeyError> {
        let keys = spec
            .split(',')
            .map(|k| {
                let raw = STANDARD.decode(k.trim()).map_err(|_| KeyError::Malformed)?;
                if raw.len() != KEY_LEN {
                    return Err(KeyError::Malformed);
                }
                MailKey::new(&raw)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { keys })
    }

    /// A fresh random key, known to this process only: for tests and tools. Whatever it sealed
    /// cannot be opened after a restart.
    pub fn ephemeral() -> Self {
        let raw = random_key();
        Self {
            // A 32-byte key is always accepted.
            keys: MailKey::new(&raw).into_iter().collect(),
        }
    }

    /// Dev mode's key: read from `data_dir`, or made there (mode 0600) on first start.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, KeyError> {
        let path = data_dir.join(DEV_KEY_FILE);
        let io = |source| KeyError::Io {
            path: path.clone(),
            source,
        };
        if !path.exists() {
            private_fs::create_dir_all(data_dir).map_err(io)?;
            let text = format!("{}\n", STANDARD.encode(random_key()));
            match private_fs::create_new_file(&path) {
                Ok(mut f) => std::io::Write::write_all(&mut f, text.as_bytes()).map_err(io)?,
                // Another process sharing the directory made it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        private_fs::restrict_file(&path).map_err(io)?;
        let text = std::fs::read_to_string(&path).map_err(io)?;
        Self::parse(&text)
    }

    /// Seals `email` for the outbox.
    pub fn seal(&self, email: &OutgoingEmail) -> Result<SealedEmail, SealError> {
        let key = self.keys.first().ok_or(SealError("no key"))?;
        let content = MailContent {
            to: email.to.clone(),
            subject: email.subject.clone(),
            body: email.body.clone(),
        };
        let mut sealed = serde_json::to_vec(&content).map_err(|_| SealError("json"))?;
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(email.kind)),
                &mut sealed,
            )
            .map_err(|_| SealError("too long"))?;
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&sealed);
        Ok(SealedEmail {
            kind: email.kind,
            sealed: format!("{VERSION}.{}.{}", key.id, URL_SAFE_NO_PAD.encode(stored)),
        })
    }

    /// Opens a sealed message of `kind`.
    pub fn open(&self, kind: &str, sealed: &str) -> Result<MailContent, Unreadable> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(VERSION), Some(id), Some(data)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Unreadable::Damaged("not a sealed message"));
        };
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| Unreadable::UnknownKey(id.to_owned()))?;
        let raw = URL_SAFE_NO_PAD
            .decode(data)
            .map_err(|_| Unreadable::Damaged("not base64"))?;
        if raw.len() < NONCE_LEN {
            return Err(Unreadable::Damaged("too short"));
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| Unreadable::Damaged("bad nonce"))?;
        let mut buf = rest.to_vec();
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(aad(kind)), &mut buf)
            .map_err(|_| Unreadable::Damaged("authentication failed"))?;
        serde_json::from_slice(plain).map_err(|_| Unreadable::Damaged("not a message"))
    }

    /// A claimed row as the worker delivers it. Rows queued before sealing existed (by this
    /// version's predecessor, also during a rolling update) are plain and delivered as they
    /// are; they carry their recipient in clear, which a sealed row never does.
    pub fn open_stored(&self, row: StoredEmail) -> QueuedEmail {
        let content = if row.to.is_empty() {
            self.open(&row.kind, &row.body)
        } else {
            Ok(MailContent {
                to: row.to,
                subject: row.subject,
                body: row.body,
            })
        };
        QueuedEmail {
            id: row.id,
            kind: row.kind,
            attempts: row.attempts,
            created_at: row.created_at,
            content,
        }
    }
}

fn random_key() -> [u8; KEY_LEN] {
    let mut raw = [0u8; KEY_LEN];
    OsRng.fill_bytes(&mut raw);
    raw
}

#[cfg(test)]
#[path = "seal_tests.rs"]
mod tests;
