//! Email verification: sending codes and checking them.

use super::audit::{self, Event};
use super::{Caller, ServiceError, ServiceResult, Services, Written};
use crate::clock::Millis;
use crate::domain::Reason;
use crate::domain::policy::Operation;
use crate::domain::verification::CodeCheck;

impl Services {
    /// Checks a code the caller typed. Wrong tries are counted durably (they commit even
    /// though the call fails), so a restart does not reset the limit. Whatever it answers, the
    /// caller's record refreshed from their token is kept, as every refusal here commits.
    pub async fn verify_email(&self, caller: &Caller, code: &str) -> ServiceResult<Written<bool>> {
        let mut w = self.begin_authorized(caller, Operation::OwnProfile).await?;
        let now = w.now();
        let mut person = match caller.email {
            Some(_) => self.sync_person(&mut w, caller).await?,
            None => w.tx().person(&caller.web_id).await?.ok_or_else(no_code)?,
        };
        let Some(mut row) = w.tx().verification(&caller.web_id).await? else {
            w.commit_refusal().await?;
            // A spent code proves nothing new; say so rather than "accepted".
            return Err(if person.email_verified() {
                already_verified()
            } else {
                no_code()
            });
        };
        if row.email != person.email {
            // The refreshed address stays on record: a code the service sends later (a second
            // STC designation) must go to it, not back to the address this code was sent to.
            w.commit_refusal().await?;
            return Err(ServiceError::precondition(
                Reason::VerificationCodeSuperseded,
                "your email address changed since this code was sent; ask for a new code",
            ));
        }
        match row.check(code, now) {
            CodeCheck::Valid => {
                let before = audit::person(&person);
                person.email_verified_at = Some(now);
                person.updated_at = now;
                w.tx().upsert_person(&person).await?;
                w.tx().delete_verification(&caller.web_id).await?;
                w.audit(Event {
                    action: "person.verify_email",
                    target_type: "person",
                    target_id: person.web_id.to_string(),
                    icn: None,
                    before: Some(before),
                    after: Some(audit::person(&person)),
                    reason: None,
                });
                w.done(true).await
            }
            CodeCheck::Wrong { attempts_left } => {
                w.tx().put_verification(&row).await?;
                w.commit_refusal().await?;
                Err(ServiceError::InvalidArgument {
                    field: "code".to_owned(),
                    reason: Reason::VerificationCodeInvalid,
                    message: if attempts_left > 0 {
                        format!("the code is not correct; {attempts_left} tries left")
                    } else {
                        "the code is not correct and may no longer be used; ask for a new code"
                            .to_owned()
                    },
                })
            }
            CodeCheck::Expired => {
                w.commit_refusal().await?;
                Err(ServiceError::precondition(
                    Reason::VerificationCodeExpired,
                    "the code has expired; ask for a new code",
                ))
            }
            CodeCheck::Locked => {
                w.commit_refusal().await?;
                Err(ServiceError::precondition(
                    Reason::VerificationCodeLocked,
                    "too many wrong tries; ask for a new code",
                ))
            }
        }
    }

    /// Sends a fresh code; the previous one stops working. Returns where and until when.
    pub async fn send_verification_email(
        &self,
        caller: &Caller,
    ) -> ServiceResult<(String, Millis)> {
        let mut w = self.begin_authorized(caller, Operation::OwnProfile).await?;
        let person = self.sync_person(&mut w, caller).await?;
        if person.email_verified() {
            // The person record may have just been created or refreshed: keep that.
            w.commit_refusal().await?;
            return Err(already_verified());
        }
        match self.queue_verification(&mut w, &person).await? {
            Ok(row) => {
                w.audit(Event {
                    action: "person.send_verification",
                    target_type: "person",
                    target_id: person.web_id.to_string(),
                    icn: None,
                    before: None,
                    after: Some(audit::person(&person)),
                    reason: None,
                });
                w.commit().await?;
                Ok((person.email.to_string(), row.expires_at))
            }
            Err(retry_after_ms) => {
                w.commit_refusal().await?;
                Err(ServiceError::ResourceExhausted {
                    reason: Reason::VerificationEmailRateLimited,
                    message: format!(
                        "a code was sent recently; try again in {} seconds",
                        (retry_after_ms + 999) / 1000
                    ),
                    retry_after_ms,
                })
            }
        }
    }
}

fn no_code() -> ServiceError {
    ServiceError::precondition(
        Reason::NoVerificationPending,
        "no verification code was sent to you; ask for one with SendVerificationEmail",
    )
}

fn already_verified() -> ServiceError {
    ServiceError::precondition(
        Reason::EmailAlreadyVerified,
        "your email address is already verified",
    )
}
