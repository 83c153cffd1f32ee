//! The error type of every server function. What crosses to the browser is safe to show:
//! internal details are logged on the server with a reference, and only the reference is sent.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

use crate::i18n::{Lang, Msg};

/// A server function failure, as the browser sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// No valid session.
    #[error("not logged in")]
    Unauthenticated,
    /// Logged in, but the role does not allow this.
    #[error("forbidden")]
    Forbidden,
    #[error("not found: {0}")]
    NotFound(String),
    /// The request was understood and refused; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// A refusal the engine names with a code and parameters, translated on the page; `text`
    /// is the English fallback (and what a code this UI does not know shows).
    #[error("{text}")]
    Refused {
        code: String,
        params: Vec<(String, String)>,
        text: String,
    },
    /// Something failed on the server; details are in the server log under `reference`.
    #[error("internal error (reference {reference})")]
    Internal { reference: String },
    /// The request did not reach the server function (network, encoding).
    #[error("request failed: {0}")]
    Transport(String),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        Self::Transport(value.to_string())
    }
}

impl AppError {
    /// A message for the page, in `lang`.
    pub fn describe(&self, lang: Lang) -> String {
        match self {
            Self::Unauthenticated => Msg::SessionEnded.text(lang).to_owned(),
            Self::Forbidden => Msg::Forbidden.text(lang).to_owned(),
            Self::NotFound(what) if what.is_empty() => Msg::NotFound.text(lang).to_owned(),
            Self::NotFound(what) => format!("{} {what}", Msg::NoSuch.text(lang)),
            Self::Invalid(m) | Self::Transport(m) => m.clone(),
            Self::Refused { code, params, text } => crate::i18n::coded(code, params, text, lang),
            Self::Internal { reference } => {
                format!("{} {reference}", Msg::InternalError.text(lang))
            }
        }
    }
}

#[cfg(feature = "ssr")]
impl AppError {
    /// Logs `error` with its cause chain under a fresh reference and returns the safe variant.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        let reference = format!("{:08x}", rand_reference());
        tracing::error!(
            reference = %reference,
            error = %grappe_engine::audit::error_chain(error),
            "server function failed"
        );
        Self::Internal { reference }
    }
}

#[cfg(feature = "ssr")]
fn rand_reference() -> u32 {
    use std::time::{SystemTime, UNIX_EPOCH};
    // Unique enough to find the log line; not a secret.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32).rotate_left(13))
        .unwrap_or(0);
    nanos ^ std::process::id().rotate_left(7)
}

#[cfg(test)]
mod tests {
    use super::AppError;
    use crate::i18n::Lang;

    fn refused(code: &str) -> AppError {
        AppError::Refused {
            code: code.into(),
            params: vec![("expected".into(), "lab".into())],
            text: "type \"lab\" to confirm".into(),
        }
    }

    #[test]
    fn a_refusal_is_translated_with_its_parameters_and_an_unknown_code_falls_back() {
        assert_eq!(
            refused("run.not_confirmed").describe(Lang::Fr),
            "Tapez « lab » pour confirmer."
        );
        assert_eq!(
            refused("run.not_confirmed").describe(Lang::En),
            "Type \"lab\" to confirm."
        );
        assert_eq!(
            refused("run.from_a_newer_engine").describe(Lang::Fr),
            "type \"lab\" to confirm"
        );
    }
}
