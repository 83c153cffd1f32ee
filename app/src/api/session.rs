//! Who is logged in, and their language and time zone preferences.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::Role;
use crate::error::AppError;
use crate::i18n::Lang;

/// The logged-in user, as the layout shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub name: String,
    pub role: Role,
    pub lang: Lang,
    /// The IANA time zone exact times are shown in; none: the browser's.
    #[serde(default)]
    pub time_zone: Option<String>,
}

#[server(endpoint = "whoami")]
pub async fn whoami() -> Result<Me, AppError> {
    let (_, p) = guard::require(Role::Viewer).await?;
    Ok(Me {
        name: p.user.name.to_string(),
        role: p.user.role,
        lang: match p.user.language {
            Language::En => Lang::En,
            Language::Fr => Lang::Fr,
        },
        time_zone: p.user.time_zone.clone(),
    })
}

/// Stores the caller's time zone for exact times (an IANA name); empty: the browser's.
#[server(endpoint = "set_time_zone")]
pub async fn set_time_zone(zone: String) -> Result<(), AppError> {
    let (engine, p) = guard::require(Role::Viewer).await?;
    let zone = zone.trim();
    let zone = if zone.is_empty() {
        None
    } else {
        Some(TimeZoneName::parse(zone).map_err(|e| AppError::Invalid(e.to_string()))?)
    };
    engine
        .users
        .set_time_zone(p.user.id, zone.as_ref())
        .await
        .map_err(|e| AppError::internal(&e))
}

/// Stores the caller's UI language.
#[server(endpoint = "set_language")]
pub async fn set_language(lang: String) -> Result<(), AppError> {
    let (engine, p) = guard::require(Role::Viewer).await?;
    let language = match Lang::from_code(&lang) {
        Some(Lang::En) => Language::En,
        Some(Lang::Fr) => Language::Fr,
        None => return Err(AppError::Invalid(format!("unknown language {lang:?}"))),
    };
    engine
        .users
        .set_language(p.user.id, language)
        .await
        .map_err(|e| AppError::internal(&e))
}

#[cfg(feature = "ssr")]
use {super::guard, grappe_engine::names::TimeZoneName, grappe_engine::users::Language};
