//! Grappe accounts: roles, language preference, and the audited ways to add, disable, enable and
//! re-role a user.

use serde::{Deserialize, Serialize};

use crate::audit::{Action, AuditEntry, AuditLog, Caller, GuardedError, Outcome, Target};
use crate::names::{TimeZoneName, UserName};
use crate::password::{Password, PasswordError, hash_password};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

/// Primary key of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

impl From<i64> for UserId {
    fn from(id: i64) -> Self {
        Self(id)
    }
}

/// What a user may do (one definition in `grappe_views`, shared with the pages).
pub use grappe_views::vocab::Role;

grappe_views::vocabulary!(
    /// The language a user reads Grappe in.
    #[derive(Default)]
    Language {
        #[default]
        En => "en",
        Fr => "fr",
    }
);

/// A stored account (without its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct User {
    #[sqlx(try_from = "i64")]
    pub id: UserId,
    #[sqlx(try_from = "String")]
    pub name: UserName,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub disabled: bool,
    #[sqlx(rename = "lang", try_from = "String")]
    pub language: Language,
    /// The time zone the user reads exact times in (an IANA name; none: the browser's). Only
    /// [`Users::set_time_zone`] writes it, from a [`TimeZoneName`].
    pub time_zone: Option<String>,
    #[sqlx(try_from = "String")]
    pub created_at: Timestamp,
}

/// Errors of user management. Messages are safe to show.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("a user named {0} already exists")]
    Exists(UserName),
    #[error("no user named {0}")]
    NotFound(UserName),
    #[error("you cannot disable or demote your own account")]
    SelfLockout,
    #[error("the last enabled admin cannot be disabled or demoted")]
    LastAdmin,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("the user store failed")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

impl From<GuardedError<UserError>> for UserError {
    fn from(e: GuardedError<UserError>) -> Self {
        match e {
            GuardedError::AuditUnavailable(a) => Self::Audit(a),
            GuardedError::Action(u) => u,
        }
    }
}

/// User management, every change audited.
#[derive(Clone, Debug)]
pub struct Users {
    store: Store,
    audit: AuditLog,
}

impl Users {
    pub fn new(store: Store, audit: AuditLog) -> Self {
        Self { store, audit }
    }

    /// # Errors
    /// [`UserError::Store`] when the store cannot be read.
    pub async fn list(&self) -> Result<Vec<User>, UserError> {
        Ok(self.store.list_users().await?)
    }

    /// # Errors
    /// [`UserError::Store`] when the store cannot be read.
    pub async fn get(&self, id: UserId) -> Result<Option<User>, UserError> {
        Ok(self.store.user_by_id(id).await?)
    }

    /// # Errors
    /// [`UserError::Store`] when the store cannot be read.
    pub async fn by_name(&self, name: &UserName) -> Result<Option<User>, UserError> {
        Ok(self.store.user_by_name(name).await?)
    }

    /// # Errors
    /// [`UserError::Store`] when the store cannot be read.
    pub async fn count(&self) -> Result<i64, UserError> {
        Ok(self.store.count_users().await?)
    }

    /// Adds a user. Audited (`user.add`).
    ///
    /// # Errors
    /// [`UserError::Exists`], a weak password, or the audit / store failing (then nothing is
    /// added).
    pub async fn add(
        &self,
        caller: &Caller,
        name: &UserName,
        password: &Password,
        role: Role,
    ) -> Result<User, UserError> {
        password.check_strength()?;
        let hash = hash_password(password).await?;
        let entry = AuditEntry::new(
            caller,
            Action::UserAdd,
            Target::object(format!("user/{name}")),
            Outcome::Success,
        )
        .detail("role", role.as_str());
        let user = self
            .audit
            .guarded(entry, async {
                self.store
                    .insert_user(name, &hash, role)
                    .await?
                    .ok_or_else(|| UserError::Exists(name.clone()))
            })
            .await?;
        Ok(user)
    }

    /// Disables a user and ends all of that user's sessions. Audited (`user.disable`).
    ///
    /// # Errors
    /// [`UserError::NotFound`], [`UserError::SelfLockout`], [`UserError::LastAdmin`], or the
    /// audit / store failing.
    pub async fn disable(&self, caller: &Caller, name: &UserName) -> Result<u64, UserError> {
        let user = self.find(name).await?;
        if caller.actor == name.as_str() {
            return Err(UserError::SelfLockout);
        }
        self.ensure_not_last_admin(&user).await?;
        let entry = AuditEntry::new(
            caller,
            Action::UserDisable,
            Target::object(format!("user/{name}")),
            Outcome::Success,
        );
        let ended = self
            .audit
            .guarded(entry, async {
                self.store.set_user_disabled(user.id, true).await?;
                Ok::<_, UserError>(self.store.end_sessions_of(user.id).await?)
            })
            .await?;
        Ok(ended)
    }

    /// Enables a disabled user. Audited (`user.enable`).
    ///
    /// # Errors
    /// [`UserError::NotFound`] or the audit / store failing.
    pub async fn enable(&self, caller: &Caller, name: &UserName) -> Result<(), UserError> {
        let user = self.find(name).await?;
        let entry = AuditEntry::new(
            caller,
            Action::UserEnable,
            Target::object(format!("user/{name}")),
            Outcome::Success,
        );
        self.audit
            .guarded(entry, async {
                self.store.set_user_disabled(user.id, false).await?;
                Ok::<_, UserError>(())
            })
            .await?;
        Ok(())
    }

    /// Changes a user's role. Audited (`user.role_change`, with the old and new role).
    ///
    /// # Errors
    /// [`UserError::NotFound`], [`UserError::SelfLockout`] (demoting yourself),
    /// [`UserError::LastAdmin`], or the audit / store failing.
    pub async fn set_role(
        &self,
        caller: &Caller,
        name: &UserName,
        role: Role,
    ) -> Result<(), UserError> {
        let user = self.find(name).await?;
        if user.role == role {
            return Ok(());
        }
        if caller.actor == name.as_str() && role < user.role {
            return Err(UserError::SelfLockout);
        }
        if role != Role::Admin {
            self.ensure_not_last_admin(&user).await?;
        }
        let entry = AuditEntry::new(
            caller,
            Action::UserRoleChange,
            Target::object(format!("user/{name}")),
            Outcome::Success,
        )
        .detail("from", user.role.as_str())
        .detail("to", role.as_str());
        self.audit
            .guarded(entry, async {
                self.store.set_user_role(user.id, role).await?;
                Ok::<_, UserError>(())
            })
            .await?;
        Ok(())
    }

    /// Sets a new password and ends every session of the user (whoever knew the old password
    /// is signed out). Audited (`user.password_change`; the password is never recorded).
    /// Returns how many sessions were ended.
    ///
    /// # Errors
    /// [`UserError::NotFound`], a weak password, or the audit / store failing.
    pub async fn set_password(
        &self,
        caller: &Caller,
        name: &UserName,
        password: &Password,
    ) -> Result<u64, UserError> {
        password.check_strength()?;
        let user = self.find(name).await?;
        let hash = hash_password(password).await?;
        let entry = AuditEntry::new(
            caller,
            Action::UserPasswordChange,
            Target::object(format!("user/{name}")),
            Outcome::Success,
        );
        let ended = self
            .audit
            .guarded(entry, async {
                self.store.set_user_password_hash(user.id, &hash).await?;
                Ok::<_, UserError>(self.store.end_sessions_of(user.id).await?)
            })
            .await?;
        Ok(ended)
    }

    /// Stores the time zone the user reads exact times in, or none for the browser's (not
    /// audited, as the language: it changes nothing but their view).
    pub async fn set_time_zone(
        &self,
        id: UserId,
        zone: Option<&TimeZoneName>,
    ) -> Result<(), UserError> {
        Ok(self.store.set_user_time_zone(id, zone).await?)
    }

    /// Stores the user's language preference (not audited: it changes nothing but their view).
    ///
    /// # Errors
    /// [`UserError::Store`] when the store fails.
    pub async fn set_language(&self, id: UserId, language: Language) -> Result<(), UserError> {
        Ok(self.store.set_user_language(id, language).await?)
    }

    async fn find(&self, name: &UserName) -> Result<User, UserError> {
        self.store
            .user_by_name(name)
            .await?
            .ok_or_else(|| UserError::NotFound(name.clone()))
    }

    async fn ensure_not_last_admin(&self, user: &User) -> Result<(), UserError> {
        if user.role != Role::Admin || user.disabled {
            return Ok(());
        }
        let admins = self
            .store
            .list_users()
            .await?
            .into_iter()
            .filter(|u| u.role == Role::Admin && !u.disabled)
            .count();
        if admins <= 1 {
            return Err(UserError::LastAdmin);
        }
        Ok(())
    }
}
