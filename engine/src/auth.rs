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
use crate::users::UserId;

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
///
/// Failures of a key (an account, an address, a remembered browser) count as one series while
/// each comes less than `window` + `max_delay` after the previous one: a guesser who waits out
/// each delay keeps the series, so the delay really doubles up to `max_delay` and stays there;
/// 20 quiet minutes (by default) end it.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// With `max_delay`, the quiet time that ends a series of failures.
    pub window: Duration,
    /// Failures in a series (per account or per address) before logins are delayed.
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
    /// The quiet time that ends a series of failures.
    fn quiet(&self) -> Duration {
        self.window + self.max_delay
    }

    /// How many failures (times newest first, microseconds) form the series still running at
    /// `now_us`.
    fn series(&self, times_desc: &[i64], now_us: i64) -> i64 {
        let quiet = i64::try_from(self.quiet().as_micros()).unwrap_or(i64::MAX);
        let mut newer = now_us;
        let mut n = 0;
        for &t in times_desc {
            if newer.saturating_sub(t) >= quiet {
                break;
            }
            n += 1;
            newer = t;
        }
        n
    }

    /// The wait imposed after `failures` failures in a series.
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

/// How long a browser that signed in is remembered (its device cookie's lifetime).
pub const DEVICE_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

fn device_digest(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
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
    /// Throttled attempts not yet written, by name and address: one audit record a minute
    /// says how many there were, so a loop of refused attempts is not one permanent row each.
    denied: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Denied>>>,
}

/// Throttled attempts of one name and address since their last audit record.
#[derive(Debug, Clone, Copy)]
struct Denied {
    written: std::time::Instant,
    since: u64,
}

/// How often the throttled attempts of one name and address are recorded.
const DENIED_EVERY: Duration = Duration::from_secs(60);
/// Names and addresses followed at once (beyond: forgotten, and recorded again).
const DENIED_TRACKED: usize = 4096;

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
            denied: std::sync::Arc::default(),
        })
    }

    /// Checks a name and password. Every attempt is audited (`auth.login`, success or failure
    /// with the reason); failures count toward throttling of the account and the address.
    ///
    /// # Errors
    /// [`AuthError`] when the store or the audit log fail; then nobody is logged in.
    #[tracing::instrument(name = "Logging in", skip_all, fields(source = caller.source.as_deref()))]
    /// `device` is the token of the browser's device cookie, if it sent one: a browser that
    /// signed in as this account before is throttled on its own failures only, so strangers
    /// guessing the account's password lock out strangers, not its owner.
    pub async fn login(
        &self,
        caller: &Caller,
        name: &str,
        password: &Password,
        device: Option<&str>,
    ) -> Result<LoginOutcome, AuthError> {
        let name_key = sanitize_for_display(&name.to_lowercase(), 64);
        let keys = match self.known_device(&name_key, device).await? {
            Some(device_key) => vec![(FailureScope::Account, device_key)],
            None => self.keys(caller, &name_key, ""),
        };
        self.check(caller, &name_key, password, &keys).await
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
        let name_key = sanitize_for_display(&name.to_lowercase(), 64);
        let keys = self.keys(caller, &name_key, "reauth:");
        self.check(caller, &name_key, password, &keys).await
    }

    /// The throttle keys of a stranger's attempt: `bucket` + account and `bucket` + address.
    fn keys(&self, caller: &Caller, name_key: &str, bucket: &str) -> Vec<(FailureScope, String)> {
        vec![
            (FailureScope::Account, format!("{bucket}{name_key}")),
            (
                FailureScope::Address,
                format!("{bucket}{}", caller.source.as_deref().unwrap_or("unknown")),
            ),
        ]
    }

    /// The throttle key of a device cookie that signed in as `name_key` before (90 days at
    /// most); `None` for no cookie, an unknown one, or one of another account.
    async fn known_device(
        &self,
        name_key: &str,
        device: Option<&str>,
    ) -> Result<Option<String>, AuthError> {
        let Some(token) = device.filter(|t| !t.is_empty() && t.len() <= 128) else {
            return Ok(None);
        };
        let digest = device_digest(token);
        let since = now().saturating_sub(DEVICE_LIFETIME).unix_micros();
        let Some(id) = self.store.device_user(&digest, since).await? else {
            return Ok(None);
        };
        let user = self.store.user_by_id(id).await?;
        Ok(user
            .filter(|u| u.name.as_str() == name_key)
            .map(|_| format!("device:{}", &digest[..16])))
    }

    /// Remembers the browser that just signed in as `user`: the token to set as its device
    /// cookie (only its digest is stored).
    ///
    /// # Errors
    /// [`AuthError::Store`] when the store fails.
    pub async fn remember_device(&self, user: UserId) -> Result<String, AuthError> {
        use base64::Engine as _;
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        self.store
            .remember_device(&device_digest(&token), user, now().unix_micros())
            .await?;
        Ok(token)
    }

    /// A password check of `name_key`, counted against the throttle `keys`.
    async fn check(
        &self,
        caller: &Caller,
        name_key: &str,
        password: &Password,
        keys: &[(FailureScope, String)],
    ) -> Result<LoginOutcome, AuthError> {
        let name_key = name_key.to_owned();
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
            if let Some(retry_after) = self.throttled(keys).await? {
                drop(_gate);
                let source = caller.source.as_deref().unwrap_or("unknown");
                if let Some(before) = self.record_denied(&format!("{name_key} {source}")) {
                    let denied = entry(Outcome::Denied, Some("throttled"));
                    self.audit
                        .append(denied.detail("throttled_before", before))
                        .await?;
                }
                return Ok(LoginOutcome::Throttled { retry_after });
            }
            self.store
                .record_login_failure(keys, now().unix_micros())
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
                for (_, key) in keys.iter().filter(|(s, _)| *s == FailureScope::Account) {
                    self.store.clear_account_failures(key).await?;
                }
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

    /// Counts a throttled attempt of `key`; `Some(n)` when it is to be recorded now, `n` being
    /// the attempts since the previous record that were not.
    fn record_denied(&self, key: &str) -> Option<u64> {
        let Ok(mut map) = self.denied.lock() else {
            return Some(0);
        };
        let now = std::time::Instant::now();
        if let Some(d) = map.get_mut(key) {
            if now.duration_since(d.written) < DENIED_EVERY {
                d.since += 1;
                return None;
            }
            let before = d.since;
            *d = Denied {
                written: now,
                since: 0,
            };
            return Some(before);
        }
        if map.len() >= DENIED_TRACKED {
            map.clear();
        }
        map.insert(
            key.to_owned(),
            Denied {
                written: now,
                since: 0,
            },
        );
        Some(0)
    }

    async fn throttled(
        &self,
        keys: &[(FailureScope, String)],
    ) -> Result<Option<Duration>, AuthError> {
        let at = now().unix_micros();
        let since = now()
            .saturating_sub(Duration::from_secs(24 * 3600))
            .unix_micros();
        // Past this many the delay no longer grows.
        let enough = self.policy.threshold + 24;
        let mut wait = None::<Duration>;
        for (scope, key) in keys {
            let times = self
                .store
                .recent_login_failures(*scope, key, since, enough)
                .await?;
            let (Some(delay), Some(&last_us)) = (
                self.policy.delay_for(self.policy.series(&times, at)),
                times.first(),
            ) else {
                continue;
            };
            let elapsed = Duration::from_micros(u64::try_from(at - last_us).unwrap_or(0));
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

    /// Whether the session stored under `session_id` still signs `user` in: not logged out,
    /// not ended by a password change or by disabling the user, not expired. A live stream
    /// asks it every few seconds and ends when it no longer does.
    ///
    /// # Errors
    /// [`AuthError::Store`] when the store fails.
    pub async fn session_alive(&self, session_id: &str, user: UserId) -> Result<bool, AuthError> {
        Ok(self.store.session_alive(session_id, user).await?)
    }

    /// Links a session to its user, so that disabling the user can end it.
    ///
    /// # Errors
    /// [`AuthError::Store`] when the store fails.
    pub async fn link_session(&self, session_id: &str, user: &User) -> Result<(), AuthError> {
        Ok(self.store.link_session(session_id, user.id).await?)
    }

    /// Housekeeping: drops expired sessions, login failures too old to count and browsers
    /// remembered too long ago.
    pub async fn prune(&self) {
        let devices = now().saturating_sub(DEVICE_LIFETIME).unix_micros();
        if let Err(e) = self.store.prune_devices(devices).await {
            tracing::warn!(error = %error_chain(&e), "pruning remembered browsers failed");
        }
        let before = now()
            .saturating_sub(Duration::from_secs(24 * 3600))
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

    /// The series goes on while each failure follows the previous within 20 minutes, so a
    /// guesser who waits out every delay reaches the cap (counting inside a 5-minute window,
    /// as before, the delay fell back to nothing once the early failures left it).
    #[test]
    fn a_series_of_failures_lasts_until_twenty_quiet_minutes() {
        let p = ThrottlePolicy::default();
        let s = 1_000_000_i64;
        // 5 failures in a minute, then one each time the delay runs out.
        let mut times = vec![0, 10 * s, 20 * s, 30 * s, 40 * s];
        let mut at = 40 * s;
        for _ in 0..6 {
            let n = p.series(&times.iter().rev().copied().collect::<Vec<_>>(), at);
            let delay = p.delay_for(n).expect("delayed");
            at += i64::try_from(delay.as_micros()).expect("micros") + s;
            times.push(at);
        }
        let newest_first: Vec<i64> = times.iter().rev().copied().collect();
        let n = p.series(&newest_first, at);
        assert_eq!(n, 11);
        assert_eq!(p.delay_for(n), Some(Duration::from_secs(15 * 60)));
        // Twenty quiet minutes end the series.
        assert_eq!(p.series(&newest_first, at + 20 * 60 * s), 0);
    }

    #[test]
    fn passwords_are_redacted_and_generated_strong() {
        let p = Password::generate();
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
        assert!(p.check_strength().is_ok());
        assert!(Password::new("short").check_strength().is_err());
    }
}
