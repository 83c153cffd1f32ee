//! The pages, one module each; shared pieces live in `layout` (the frame) and `plan` (plans,
//! confirmations).

pub mod active;
pub mod bgp;
pub mod cni;
pub mod drain;
pub mod history;
pub mod home;
pub mod host;
pub mod ipam;
pub mod layout;
pub mod login;
pub mod mtu;
pub mod node;
pub mod nodes;
pub mod not_found;
pub mod overview;
pub mod plan;
pub mod recover;
pub mod reset;
pub mod run;
pub mod settings;

use leptos::prelude::*;

/// The `<option>`s of a select of nodes, the `selected`-th chosen.
pub fn node_options(nodes: &[String], selected: usize) -> Vec<AnyView> {
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            view! { <option value=n.clone() selected=i == selected>{n.clone()}</option> }.into_any()
        })
        .collect()
}

/// A value as a page shows it: absent or empty is a dash. An empty text is not only unreadable
/// in a table: the browser makes no text node of it, so the page's hydration, which expects
/// one, fails (it did on the IPAM page's leaked-address table).
pub fn or_dash(value: Option<String>) -> String {
    value
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "—".to_owned())
}

#[cfg(test)]
mod tests {
    use super::or_dash;

    #[test]
    fn absent_and_empty_values_are_a_dash() {
        assert_eq!(or_dash(None), "—");
        assert_eq!(or_dash(Some(String::new())), "—");
        assert_eq!(or_dash(Some("10.64.1.3".into())), "10.64.1.3");
    }
}
