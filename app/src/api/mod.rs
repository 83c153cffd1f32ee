//! Server functions and the view types they return. Each server function is thin: it checks the
//! session and role ([`guard`]), calls the engine, and maps the result to a view type defined
//! here or in `grappe_views` (the browser never sees engine types).

pub mod clusters;
pub mod history;
pub mod hosts;
pub mod nodes;
pub mod runs;
pub mod session;
pub mod state;
pub mod users;

#[cfg(feature = "ssr")]
pub mod guard;

use serde::{Deserialize, Serialize};

/// A role, as the UI knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleView {
    Viewer,
    Operator,
    Admin,
}

impl RoleView {
    pub const ALL: [RoleView; 3] = [RoleView::Viewer, RoleView::Operator, RoleView::Admin];

    pub fn code(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    pub fn label(self, lang: crate::i18n::Lang) -> &'static str {
        use crate::i18n::Msg;
        match self {
            Self::Viewer => Msg::RoleViewer.text(lang),
            Self::Operator => Msg::RoleOperator.text(lang),
            Self::Admin => Msg::RoleAdmin.text(lang),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<grappe_engine::users::Role> for RoleView {
    fn from(r: grappe_engine::users::Role) -> Self {
        use grappe_engine::users::Role;
        match r {
            Role::Viewer => Self::Viewer,
            Role::Operator => Self::Operator,
            Role::Admin => Self::Admin,
        }
    }
}

#[cfg(feature = "ssr")]
impl From<RoleView> for grappe_engine::users::Role {
    fn from(r: RoleView) -> Self {
        use grappe_engine::users::Role;
        match r {
            RoleView::Viewer => Role::Viewer,
            RoleView::Operator => Role::Operator,
            RoleView::Admin => Role::Admin,
        }
    }
}
