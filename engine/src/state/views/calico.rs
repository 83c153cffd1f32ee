//! The overview's Calico card: how Calico is installed (a manifest in kube-system, or the Tigera
//! operator in calico-system), its version, the API serving its resources, its API server, and
//! the operator's reports and Installation.

use grappe_views::{CalicoView, TigeraStatusView};

use crate::diagnostics::detect_cnis;
use crate::runs::cni::compat::Method;
use crate::state::store::Stores;
use crate::time::fmt_unix_seconds;

/// The card, when Calico runs or its operator's resources exist.
pub(super) fn calico_view(stores: &Stores) -> Option<CalicoView> {
    let detected = detect_cnis(stores)
        .into_iter()
        .find(|(kind, _, _)| kind == "Calico");
    let operated = stores.installation.is_some() || !stores.tigera_status.is_empty();
    if detected.is_none() && !operated && stores.calico_api.is_none() {
        return None;
    }
    let method = match detected.as_ref().map(|(_, _, ds)| Method::of_daemonset(ds)) {
        Some(Method::Operator) => "operator",
        Some(Method::Manifest) => "manifest",
        None if operated => "operator",
        None => "manifest",
    };
    let installation = stores.installation.as_ref();
    Some(CalicoView {
        method: method.to_owned(),
        version: installation
            .and_then(|i| i.calico_version.clone())
            .or_else(|| detected.and_then(|(_, v, _)| v))
            .or_else(|| {
                stores
                    .cluster_info
                    .as_ref()
                    .map(|c| c.calico_version.clone())
            }),
        api: stores.calico_api.map(|a| a.api_version().to_owned()),
        apiserver: stores
            .calico_apiserver
            .as_ref()
            .map(|a| (a.available, a.message.clone())),
        components: stores
            .tigera_status
            .values()
            .map(|t| TigeraStatusView {
                name: t.name.clone(),
                state: t.state().to_owned(),
                reason: t.reason.clone(),
                message: t.message.clone(),
                since: fmt_unix_seconds(t.since),
            })
            .collect(),
        pools: installation
            .map(|i| {
                i.pools
                    .iter()
                    .map(|(cidr, block, encap)| format!("{cidr} /{block} {encap}"))
                    .collect()
            })
            .unwrap_or_default(),
        mtu: installation.and_then(|i| i.mtu),
        dataplane: installation.map(|i| i.dataplane.clone()),
    })
}
