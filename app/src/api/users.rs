//! User administration (admin only): list, add, change role, disable and enable. Every change is
//! audited by the engine.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::Role;
use crate::error::AppError;

/// A user in the settings table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: String,
}

#[server(endpoint = "list_users")]
pub async fn list_users() -> Result<Vec<UserRow>, AppError> {
    let (engine, _) = guard::require(Role::Admin).await?;
    let users = engine
        .users
        .list()
        .await
        .map_err(|e| AppError::internal(&e))?;
    Ok(users
        .into_iter()
        .map(|u| UserRow {
            name: u.name.to_string(),
            role: u.role,
            disabled: u.disabled,
            created_at: u.created_at.to_string(),
        })
        .collect())
}

/// Adds a user with a generated password, returned once so the admin can hand it over.
#[server(endpoint = "add_user")]
pub async fn add_user(
    name: String,
    role: String,
    #[server(default)] password: String,
) -> Result<String, AppError> {
    let (engine, p) = guard::require(Role::Admin).await?;
    guard::reauthenticated(&engine, &p, &password, false).await?;
    let name = UserName::parse(name.trim()).map_err(|e| AppError::Invalid(e.to_string()))?;
    let role = parse_role(&role)?;
    let password = Password::generate();
    engine
        .users
        .add(&p.caller, &name, &password, role)
        .await
        .map_err(map_user_error)?;
    Ok(password.expose().to_owned())
}

#[server(endpoint = "set_user_role")]
pub async fn set_user_role(
    name: String,
    role: String,
    #[server(default)] password: String,
) -> Result<(), AppError> {
    let (engine, p) = guard::require(Role::Admin).await?;
    guard::reauthenticated(&engine, &p, &password, false).await?;
    let name = UserName::parse(&name).map_err(|e| AppError::Invalid(e.to_string()))?;
    let role = parse_role(&role)?;
    engine
        .users
        .set_role(&p.caller, &name, role)
        .await
        .map_err(map_user_error)
}

/// Disables (ending their sessions) or enables a user.
#[server(endpoint = "set_user_disabled")]
pub async fn set_user_disabled(
    name: String,
    disabled: bool,
    #[server(default)] password: String,
) -> Result<(), AppError> {
    let (engine, p) = guard::require(Role::Admin).await?;
    guard::reauthenticated(&engine, &p, &password, false).await?;
    let name = UserName::parse(&name).map_err(|e| AppError::Invalid(e.to_string()))?;
    if disabled {
        engine
            .users
            .disable(&p.caller, &name)
            .await
            .map(|_| ())
            .map_err(map_user_error)
    } else {
        engine
            .users
            .enable(&p.caller, &name)
            .await
            .map_err(map_user_error)
    }
}

#[cfg(feature = "ssr")]
use {
    super::guard, grappe_engine::auth::Password, grappe_engine::names::UserName,
    grappe_engine::users::UserError,
};

#[cfg(feature = "ssr")]
fn parse_role(code: &str) -> Result<Role, AppError> {
    Role::parse(code).ok_or_else(|| AppError::Invalid(format!("unknown role {code:?}")))
}

#[cfg(feature = "ssr")]
fn map_user_error(e: UserError) -> AppError {
    match e {
        UserError::Exists(_)
        | UserError::NotFound(_)
        | UserError::SelfLockout
        | UserError::LastAdmin
        | UserError::Password(_) => AppError::Invalid(e.to_string()),
        other => AppError::internal(&other),
    }
}
