//! Authentication: argon2id password hashes, login with persisted throttling, and the audit
//! records of logins and logouts.
//!
//! Login answers are uniform: an unknown user, a wrong password and a disabled account all give
//! [`LoginOutcome::Invalid`], and an unknown user costs one argon2id verification like a known
//! one, so neither the answer nor its timing tells whether an account exists.

use std::time::Duration;

use crate::audit::{Action, AuditEntry, AuditLog, Caller, Outcome, Target, error_chain};
use crate::names::{UserName, sanitize_for_display};
use crate::password::verify_password;
pub use crate::password::{MIN_PASSWORD_LEN, Password, PasswordError, hash_password};
use crate::store::throttle::FailureScope;
use crate::store::{Store, StoreError};
use crate::time::now;
use crate::users::User;

/// The logged-in user behind one request: who they are, where the request came from, and when
/// they logged in. Built by the server's session middleware, read by server functions.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    /// The audit identity of this request (actor = the user's name).
    pub caller: Caller,
    pub login_at: crate::time::Timestamp,
    /// The login is older than the re-authentication window: destructive actions ask for the
    /// password again.
    pub reauth_due: bool,
}

/// Throttling policy for logins.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures counted over this window.
    pub window: Duration,
    /// Failures in the window (per account or per address) before logins are delayed.
    pub threshold: i64,
    /// The delay after reaching the threshold; doubles with each further failure.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(5 * 60),
            threshold: 5,
            base_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(15 * 60),
        }
    }
}

impl ThrottlePolicy {
    /// The wait imposed after `failures` failures in the window.
    fn delay_for(&self, failures: i64) -> Option<Duration> {
        if failures < self.threshold {
            return None;
        }
        let doublings = u32::try_from(failures - self.threshold)
            .unwrap_or(u32::MAX)
            .min(20);
        Some(
            self.base_delay
                .saturating_mul(2u32.saturating_pow(doublings))
                .min(self.max_delay),
        )
    }
}

/// The result of a login attempt.
#[derive(Debug)]
pub enum LoginOutcome {
    Success(User),
    /// Unknown user, wrong password or disabled account: one answer for all.
    Invalid,
    /// Too many recent failures for this account or address.
    Throttled {
        retry_after: Duration,
    },
    /// As many passwords are being verified as there are cores: try again in a moment.
    Busy,
}

/// Authentication errors (infrastructure only; a wrong password is not an error).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the account store failed")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

/// Logs people in and out.
#[derive(Clone, Debug)]
pub struct Authenticator {
    store: Store,
    audit: AuditLog,
    policy: ThrottlePolicy,
    /// Verified against when the user is unknown, so that both paths cost the same.
    dummy_hash: String,
    /// Makes the throttle's check and the attempt's record one step: parallel attempts are
    /// counted one after the other, before any of them is verified.
    gate: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Bounds the argon2id verifications running at once (19 MiB each): one per core.
    verifications: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Authenticator {
    /// # Errors
    /// [`AuthError::Password`] if the dummy hash cannot be computed.
    pub async fn new(
        store: Store,
        audit: AuditLog,
        policy: ThrottlePolicy,
    ) -> Result<Self, AuthError> {
        let dummy_hash = hash_password(&Password::generate()).await?;
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Ok(Self {
            store,
            audit,
            policy,
            dummy_hash,
            gate: std::sync::Arc::default(),
            verifications: std::sync::Arc::new(tokio::sync::Semaphore::new(cores)),
        })
    }

    /// Checks a name and password. Every attempt is audited (`auth.login`, success or failure
    /// with the reason); failures count toward throttling of the account and the address.
    ///
    /// # Errors
    /// [`AuthError`] when the store or the audit log fail; then nobody is logged in.
    #[tracing::instrument(name = "Logging in", skip_all, fields(source = caller.source.as_deref()))]
    pub async fn login(
        &self,
        caller: &Caller,
        name: &str,
        password: &Password,
    ) -> Result<LoginOutcome, AuthError> {
        self.check(caller, name, password, "").await
    }

    /// Checks the password of a user whose session is valid, before a workflow starts: as a
    /// login (audited, counted, throttled), in a bucket of its own, so that strangers guessing
    /// the same account's password at the login form do not lock its logged-in owner out of a
    /// recovery.
    ///
    /// # Errors
    /// As [`Authenticator::login`].
    pub async fn reauthenticate(
        &self,
        caller: &Caller,
        name: &str,
        password: &Password,
    ) -> Result<LoginOutcome, AuthError> {
        self.check(caller, name, password, "reauth:").await
    }

    /// A password check whose throttle keys are `bucket` + account and `bucket` + address.
    async fn check(
        &self,
        caller: &Caller,
        name: &str,
        password: &Password,
        bucket: &str,
    ) -> Result<LoginOutcome, AuthError> {
        let name_key = sanitize_for_display(&name.to_lowercase(), 64);
        let account_key = format!("{bucket}{name_key}");
        let address_key = format!("{bucket}{}", caller.source.as_deref().unwrap_or("unknown"));
        let mut who = caller.clone();
        who.actor = if name_key.is_empty() {
            "anonymous".to_owned()
        } else {
            name_key.clone()
        };
        let entry = |outcome, reason: Option<&str>| {
            let e = AuditEntry::new(&who, Action::Login, Target::default(), outcome);
            match reason {
                Some(r) => e.detail("reason", r),
                None => e,
            }
        };

        // As many verifications at once as cores: a login waits a second for its turn, then is
        // refused before anything is counted.
        let turn = tokio::time::timeout(Duration::from_secs(1), self.verifications.acquire());
        let Ok(Ok(_verifying)) = turn.await else {
            return Ok(LoginOutcome::Busy);
        };
        // Check, then count this attempt as a failure until it proves right, in one step.
        let attempt = {
            let _gate = self.gate.lock().await;
            if let Some(retry_after) = self.throttled(&account_key, &address_key).await? {
                drop(_gate);
                self.audit
                    .append(entry(Outcome::Denied, Some("throttled")))
                    .await?;
                return Ok(LoginOutcome::Throttled { retry_after });
            }
            self.store
                .record_login_failure(&account_key, &address_key, now().unix_micros())
                .await?
        };

        let found = match UserName::parse(&name_key) {
            Ok(user_name) => self.store.user_with_hash_by_name(&user_name).await?,
            Err(_) => None,
        };
        let (phc, user) = match &found {
            Some(f) => (f.password_hash.as_str(), Some(&f.user)),
            None => (self.dummy_hash.as_str(), None),
        };
        // An over-long password is wrong without being hashed.
        let password_ok = !password.too_long() && verify_password(password, phc).await?;

        match user {
            Some(user) if password_ok && !user.disabled => {
                self.audit.append(entry(Outcome::Success, None)).await?;
                self.store.forget_login_attempt(&attempt).await?;
                self.store.clear_account_failures(&account_key).await?;
                Ok(LoginOutcome::Success(user.clone()))
            }
            _ => {
                let reason = match user {
                    None => "unknown_user",
                    Some(u) if u.disabled => "disabled",
                    Some(_) => "wrong_password",
                };
                self.audit
                    .append(entry(Outcome::Failure, Some(reason)))
                    .await?;
                Ok(LoginOutcome::Invalid)
            }
        }
    }

    async fn throttled(&self, account: &str, address: &str) -> Result<Option<Duration>, AuthError> {
        let at = now();
        let since = at.saturating_sub(self.policy.window).unix_micros();
        let mut wait = None::<Duration>;
        for (scope, key) in [
            (FailureScope::Account, account),
            (FailureScope::Address, address),
        ] {
            let failures = self.store.count_login_failures(scope, key, since).await?;
            let (Some(delay), Some(last_us)) =
                (self.policy.delay_for(failures.count), failures.last_us)
            else {
                continue;
            };
            let elapsed_us = u64::try_from(at.unix_micros() - last_us).unwrap_or(0);
            let elapsed = Duration::from_micros(elapsed_us);
            if elapsed < delay {
                let remaining = delay - elapsed;
                wait = Some(wait.map_or(remaining, |w| w.max(remaining)));
            }
        }
        Ok(wait)
    }

    /// Records a logout (`auth.logout`) and forgets the session.
    ///
    /// # Errors
    /// [`AuthError`] when the store or the audit log fail.
    pub async fn logout(&self, caller: &Caller, session_id: Option<&str>) -> Result<(), AuthError> {
        self.audit
            .append(AuditEntry::new(
                caller,
                Action::Logout,
                Target::default(),
                Outcome::Success,
            ))
            .await?;
        if let Some(id) = session_id {
            self.store.unlink_session(id).await?;
        }
        Ok(())
    }

    /// Links a session to its user, so that disabling the user can end it.
    ///
    /// # Errors
    /// [`AuthError::Store`] when the store fails.
    pub async fn link_session(&self, session_id: &str, user: &User) -> Result<(), AuthError> {
        Ok(self.store.link_session(session_id, user.id).await?)
    }

    /// Housekeeping: drops expired sessions and login failures too old to count.
    pub async fn prune(&self) {
        let before = now()
            .saturating_sub(self.policy.window + self.policy.max_delay)
            .unix_micros();
        if let Err(e) = self.store.prune_login_failures(before).await {
            tracing::warn!(error = %error_chain(&e), "pruning login failures failed");
        }
        match self.store.delete_expired_sessions().await {
            Ok(n) if n > 0 => tracing::debug!(removed = n, "expired sessions removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %error_chain(&e), "removing expired sessions failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_starts_at_the_threshold_and_doubles_up_to_the_cap() {
        let p = ThrottlePolicy::default();
        assert_eq!(p.delay_for(4), None);
        assert_eq!(p.delay_for(5), Some(Duration::from_secs(30)));
        assert_eq!(p.delay_for(6), Some(Duration::from_secs(60)));
        assert_eq!(p.delay_for(50), Some(Duration::from_secs(15 * 60)));
    }

    #[test]
    fn passwords_are_redacted_and_generated_strong() {
        let p = Password::generate();
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
        assert!(p.check_strength().is_ok());
        assert!(Password::new("short").check_strength().is_err());
    }
}
