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

/// A role: the shared vocabulary's, as the engine checks it.
pub use grappe_views::vocab::Role;

/// A role's name in the reader's language.
pub fn role_label(role: Role, lang: crate::i18n::Lang) -> &'static str {
    use crate::i18n::Msg;
    match role {
        Role::Viewer => Msg::Roleer.text(lang),
        Role::Operator => Msg::RoleOperator.text(lang),
        Role::Admin => Msg::RoleAdmin.text(lang),
    }
}
