//! Turning an outbox row into an RFC 5322 message and handing it to SMTP or a directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{MailContent, MailError, QueuedEmail};
use crate::domain::ids::mail_recipient;
use crate::private_fs;

/// Per network operation: long enough for a slow relay, short enough that a dead one does not
/// hold a claimed batch for most of its lease.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

pub enum MailTransport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// One `.eml` file per message; for development and tests.
    Dir(PathBuf),
}

impl std::fmt::Debug for MailTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The SMTP URL may carry credentials, so only the kind is shown.
            Self::Smtp(_) => f.write_str("MailTransport::Smtp"),
            Self::Dir(p) => write!(f, "MailTransport::Dir({})", p.display()),
        }
    }
}

impl MailTransport {
    /// `smtp://host:port` (plain), `smtp://host?tls=required|opportunistic` (STARTTLS),
    /// `smtps://host` (implicit TLS); `user:password@` in the URL enables AUTH. Must be called
    /// inside a Tokio runtime.
    pub fn from_smtp_url(url: &str) -> Result<Self, MailError> {
        // lettre's connection pool spawns its reaper task on build and panics without a runtime.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(MailError::NoRuntime);
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Self::Smtp(transport))
    }

    /// Creates `path` (and parents) if missing, private to the service's user: the files in
    /// it are delivered mail, verification codes included.
    pub fn dir(path: impl Into<PathBuf>) -> Result<Self, MailError> {
        let path = path.into();
        private_fs::create_dir_all(&path).map_err(|source| MailError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(Self::Dir(path))
    }

    pub async fn deliver(
        &self,
        from: &Mailbox,
        msg: &QueuedEmail,
        content: &MailContent,
    ) -> Result<(), MailError> {
        let message = build_message(from, msg, content)?;
        match self {
            Self::Smtp(smtp) => {
                smtp.send(message).await?;
                Ok(())
            }
            Self::Dir(dir) => {
                let target = dir.join(eml_file_name(msg));
                let bytes = message.formatted();
                let (dir, path) = (dir.clone(), target.clone());
                tokio::task::spawn_blocking(move || write_atomically(&dir, &target, &bytes))
                    .await
                    .map_err(|e| MailError::Io {
                        path,
                        source: std::io::Error::other(e),
                    })?
            }
        }
    }
}

/// A function of the outbox row only, so a redelivery after a crash overwrites the first copy.
pub(crate) fn eml_file_name(msg: &QueuedEmail) -> String {
    format!("{}-{}.eml", msg.created_at, msg.id)
}

/// Stable per outbox row so that receivers (and people) can recognise a redelivery.
pub(crate) fn message_id(id: i64) -> String {
    format!("<outbox-{id}@entitlements>")
}

/// 9999-12-31 23:59:59.999 UTC, the last instant an email's Date header can name.
const LAST_DATE_MS: u64 = 253_402_300_799_999;

pub fn build_message(
    from: &Mailbox,
    msg: &QueuedEmail,
    content: &MailContent,
) -> Result<Message, MailError> {
    // The parser `Email::parse` uses, so every address the service accepted builds here.
    let to = mail_recipient(&content.to).map_err(|e| MailError::Recipient(e.0))?;
    // The creation time rather than the send time: the Date is when the event happened, and it
    // keeps a redelivered message byte-identical to the first. Held to years 1970-9999: lettre's
    // Date header panics past 9999, and a row's time is read back from a database.
    let ms = u64::try_from(msg.created_at).unwrap_or(0).min(LAST_DATE_MS);
    let date = UNIX_EPOCH + Duration::from_millis(ms);
    let part = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(plain_body(&content.body));
    Ok(Message::builder()
        .from(from.clone())
        .to(to)
        .subject(content.subject.as_str())
        .date(date)
        .message_id(Some(message_id(msg.id)))
        .singlepart(part)?)
}

/// Sends the text as written (7bit, or 8bit when not ASCII) so every line stays readable in
/// the raw message: people and tests read codes straight out of the source. lettre's own choice
/// switches to quoted-printable for any line of 76 characters or more, which soft-wraps lines
/// and turns `=` into `=3D`.
fn plain_body(text: &str) -> Body {
    let crlf = text
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n");
    // RFC 5322's hard limit is 998 octets per line; NUL may not travel unencoded at all.
    let fits = !crlf.contains('\0') && crlf.split("\r\n").all(|l| l.len() <= 998);
    if !fits {
        return Body::new(text.to_owned());
    }
    let encoding = if crlf.is_ascii() {
        ContentTransferEncoding::SevenBit
    } else {
        ContentTransferEncoding::EightBit
    };
    Body::dangerous_pre_encoded(crlf.into_bytes(), encoding)
}

/// Temp file in the same directory, then rename: a reader never sees half a message, and a
/// crash leaves at most a stray temp file. The file is private (0600) from its creation: it may
/// hold a verification code.
fn write_atomically(dir: &Path, target: &Path, bytes: &[u8]) -> Result<(), MailError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MailError::Io { path, source }
    };
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Random suffix: two replicas redelivering the same row must not share a temp file.
    let tmp = dir.join(format!(".{file_name}.{:016x}.tmp", rand::random::<u64>()));
    let result = (|| {
        let mut file = private_fs::create_new_file(&tmp).map_err(io_err(&tmp))?;
        file.write_all(bytes).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, target).map_err(io_err(target))
    })();
    if result.is_err() {
        // Best effort: the error being returned is the one worth reporting.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
