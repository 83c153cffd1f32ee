//! Parsing a multi-document YAML manifest into Kubernetes objects, each with the document
//! number and line it starts on (errors name both), the order objects are applied in, and
//! Calico's install options as structured edits of the calico-node container's env.

use serde_json::Value;

use crate::net::Cidr;

/// The Tigera operator's custom resources a plan may apply, each with the `TigeraStatus`
/// component that reports it.
const OPERATOR_KINDS: [(&str, &str); 4] = [
    ("Installation", "calico"),
    ("APIServer", "apiserver"),
    ("Goldmane", "goldmane"),
    ("Whisker", "whisker"),
];

/// The `TigeraStatus` component reporting an operator custom resource of `kind`.
#[must_use]
pub fn operator_component(kind: &str) -> Option<&'static str> {
    OPERATOR_KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, c)| *c)
}

/// An object of a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestObject {
    /// 1-based document number in the file.
    pub doc: usize,
    /// 1-based line of the document's first line.
    pub line: usize,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub value: Value,
}

impl ManifestObject {
    /// `Kind/namespace/name` or `Kind/name`.
    pub fn key(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{ns}/{}", self.kind, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }

    /// The phase this object is applied in.
    pub fn phase(&self) -> Phase {
        Phase::of(&self.kind)
    }
}

/// Apply order: CRDs (then wait until Established), namespaces, RBAC, configuration, workloads.
/// Deletion runs in the reverse order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    Crds,
    Namespaces,
    Rbac,
    Config,
    Workloads,
    /// The Tigera operator's custom resources (`Installation` and the optional components),
    /// applied once the operator runs, as its documentation orders.
    Custom,
}

impl Phase {
    pub const ALL: [Phase; 6] = [
        Phase::Crds,
        Phase::Namespaces,
        Phase::Rbac,
        Phase::Config,
        Phase::Workloads,
        Phase::Custom,
    ];

    pub fn of(kind: &str) -> Self {
        match kind {
            "CustomResourceDefinition" => Self::Crds,
            "Namespace" => Self::Namespaces,
            "ServiceAccount" | "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding" => {
                Self::Rbac
            }
            "ConfigMap" | "Secret" | "PriorityClass" => Self::Config,
            k if operator_component(k).is_some() => Self::Custom,
            _ => Self::Workloads,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Crds => "crds",
            Self::Namespaces => "namespaces",
            Self::Rbac => "rbac",
            Self::Config => "config",
            Self::Workloads => "workloads",
            Self::Custom => "operator resources",
        }
    }
}

/// A manifest that cannot be used, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("document {doc} (line {line}): {message}")]
pub struct ParseError {
    pub doc: usize,
    pub line: usize,
    pub message: String,
}

/// Parses every document; empty documents and comment-only documents are skipped. Objects keep
/// the file's order (use [`Phase`] to sort for applying).
///
/// # Errors
/// The first [`ParseError`]: invalid YAML, a document that is not a Kubernetes object, a
/// `List`, or two objects with the same kind, namespace and name.
pub fn parse(text: &str) -> Result<Vec<ManifestObject>, ParseError> {
    let mut objects: Vec<ManifestObject> = Vec::new();
    for (index, (line, body)) in documents(text).into_iter().enumerate() {
        let doc = index + 1;
        if body
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            continue;
        }
        let value: Value = serde_yaml::from_str(&body).map_err(|e| ParseError {
            doc,
            line: line + e.location().map_or(0, |l| l.line().saturating_sub(1)),
            message: yaml_message(&e),
        })?;
        let err = |message: String| ParseError { doc, line, message };
        if value.is_null() {
            continue;
        }
        let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
        let api_version = field("apiVersion").ok_or_else(|| err("no apiVersion".into()))?;
        let kind = field("kind").ok_or_else(|| err("no kind".into()))?;
        if kind == "List" || kind.ends_with("List") {
            return Err(err(format!(
                "{kind} documents are not supported: one object per document"
            )));
        }
        let meta = value.get("metadata");
        let name = meta
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| err(format!("{kind} without metadata.name")))?
            .to_owned();
        let namespace = meta
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let object = ManifestObject {
            doc,
            line,
            api_version,
            kind,
            name,
            namespace,
            value,
        };
        if let Some(first) = objects.iter().find(|o| o.key() == object.key()) {
            return Err(err(format!(
                "{} is also defined in document {} (line {})",
                object.key(),
                first.doc,
                first.line
            )));
        }
        objects.push(object);
    }
    if objects.is_empty() {
        return Err(ParseError {
            doc: 1,
            line: 1,
            message: "no Kubernetes object in the manifest".into(),
        });
    }
    Ok(objects)
}

/// Splits at `---` lines; returns each document with its first line (1-based).
fn documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut start = 1;
    let mut body = String::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") {
            docs.push((start, std::mem::take(&mut body)));
            start = i + 2;
            continue;
        }
        body.push_str(line);
        body.push('\n');
    }
    docs.push((start, body));
    docs
}

/// serde_yaml's message without its own "at line N column M" (the caller gives the file's line).
fn yaml_message(e: &serde_yaml::Error) -> String {
    let msg = e.to_string();
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg,
    }
}

/// Calico's options offered before an install.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalicoOptions {
    /// `CALICO_IPV4POOL_CIDR`: the default pool (Calico otherwise takes kubeadm's podSubnet).
    pub ipv4pool_cidr: Option<Cidr>,
    /// `IP_AUTODETECTION_METHOD`, e.g. `kubernetes-internal-ip` or `interface=eth0`.
    pub ip_autodetection_method: Option<String>,
}

/// Errors of Calico options.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    #[error(
        "IP_AUTODETECTION_METHOD {0:?} is not one of first-found, kubernetes-internal-ip, can-reach=, interface=, skip-interface=, cidr="
    )]
    AutodetectionMethod(String),
    #[error("the manifest has no calico-node DaemonSet with a calico-node container")]
    NoCalicoNode,
}

/// Checks an `IP_AUTODETECTION_METHOD` value (Calico's documented forms).
///
/// # Errors
/// [`OptionsError::AutodetectionMethod`].
pub fn check_autodetection_method(method: &str) -> Result<(), OptionsError> {
    let bad = || OptionsError::AutodetectionMethod(method.to_owned());
    if method == "first-found" || method == "kubernetes-internal-ip" {
        return Ok(());
    }
    let (key, arg) = method.split_once('=').ok_or_else(bad)?;
    let arg_ok = !arg.is_empty()
        && arg.len() <= 253
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:/,*+?[]()^$|\\".contains(c));
    match key {
        "can-reach" | "interface" | "skip-interface" if arg_ok => Ok(()),
        "cidr" if arg_ok && arg.split(',').all(|c| c.parse::<Cidr>().is_ok()) => Ok(()),
        _ => Err(bad()),
    }
}

/// Applies the options to the calico-node container's env (replacing a variable or adding it).
///
/// # Errors
/// [`OptionsError`] when a method is invalid or the manifest has no calico-node container.
pub fn apply_calico_options(
    objects: &mut [ManifestObject],
    options: &CalicoOptions,
) -> Result<(), OptionsError> {
    let mut vars = Vec::new();
    if let Some(cidr) = &options.ipv4pool_cidr {
        vars.push(("CALICO_IPV4POOL_CIDR", cidr.to_string()));
    }
    if let Some(method) = &options.ip_autodetection_method {
        check_autodetection_method(method)?;
        vars.push(("IP_AUTODETECTION_METHOD", method.clone()));
    }
    if vars.is_empty() {
        return Ok(());
    }
    let container = objects
        .iter_mut()
        .filter(|o| o.kind == "DaemonSet" && o.name == "calico-node")
        .find_map(|o| {
            o.value
                .pointer_mut("/spec/template/spec/containers")?
                .as_array_mut()?
                .iter_mut()
                .find(|c| c.get("name").and_then(Value::as_str) == Some("calico-node"))
        })
        .ok_or(OptionsError::NoCalicoNode)?;
    let env = container
        .as_object_mut()
        .ok_or(OptionsError::NoCalicoNode)?
        .entry("env")
        .or_insert_with(|| Value::Array(Vec::new()));
    let env = env.as_array_mut().ok_or(OptionsError::NoCalicoNode)?;
    for (name, value) in vars {
        let entry = serde_json::json!({ "name": name, "value": value });
        match env
            .iter_mut()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
        {
            Some(existing) => *existing = entry,
            None => env.push(entry),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(file: &str) -> String {
        let dir = std::env::var("GRAPPE_MANIFESTS").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/manifests").to_owned()
        });
        std::fs::read_to_string(format!("{dir}/{file}"))
            .unwrap_or_else(|e| panic!("{dir}/{file} (set GRAPPE_MANIFESTS): {e}"))
    }

    fn count(objects: &[ManifestObject], kind: &str) -> usize {
        objects.iter().filter(|o| o.kind == kind).count()
    }

    #[test]
    fn upstream_manifests_parse_to_their_object_counts() {
        let calico = parse(&shared("calico-v3.25.1.yaml")).unwrap();
        assert_eq!(calico.len(), 27);
        assert_eq!(count(&calico, "CustomResourceDefinition"), 17);
        assert_eq!(count(&calico, "ClusterRole"), 2);
        assert_eq!(count(&calico, "DaemonSet"), 1);
        assert!(calico.iter().all(|o| o.kind == "CustomResourceDefinition"
            || o.kind.starts_with("Cluster")
            || o.namespace.as_deref() == Some("kube-system")));
        let upgrade = parse(&shared("calico-v3.26.5.yaml")).unwrap();
        assert_eq!(upgrade.len(), 31);
        assert_eq!(count(&upgrade, "CustomResourceDefinition"), 18);
        let flannel = parse(&shared("kube-flannel-v0.28.9.yml")).unwrap();
        assert_eq!(flannel.len(), 6);
        assert_eq!(flannel[0].kind, "Namespace");
    }

    #[test]
    fn errors_name_the_document_and_line() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  labels: [x\n";
        let e = parse(text).unwrap_err();
        assert_eq!(e.doc, 2);
        assert!((9..=11).contains(&e.line), "{e}");
        let e =
            parse("# only a comment\n---\nkind: ConfigMap\nmetadata:\n  name: a\n").unwrap_err();
        assert_eq!((e.doc, e.line), (2, 3));
        assert!(e.message.contains("apiVersion"), "{e}");
        let dup = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";
        assert!(parse(dup).unwrap_err().message.contains("document 1"));
        assert!(parse("").is_err());
        assert!(parse("apiVersion: v1\nkind: List\nitems: []\n").is_err());
    }

    #[test]
    fn phases_order_crds_first_and_workloads_last() {
        let mut calico = parse(&shared("calico-v3.25.1.yaml")).unwrap();
        calico.sort_by_key(ManifestObject::phase);
        assert_eq!(calico[0].kind, "CustomResourceDefinition");
        assert_eq!(calico[26].phase(), Phase::Workloads);
        let first_rbac = calico
            .iter()
            .position(|o| o.phase() == Phase::Rbac)
            .unwrap();
        assert_eq!(first_rbac, 17);
    }

    #[test]
    fn calico_options_edit_the_calico_node_env() {
        let mut calico = parse(&shared("calico-v3.25.1.yaml")).unwrap();
        let options = CalicoOptions {
            ipv4pool_cidr: Some("10.244.0.0/16".parse().unwrap()),
            ip_autodetection_method: Some("kubernetes-internal-ip".into()),
        };
        apply_calico_options(&mut calico, &options).unwrap();
        let ds = calico.iter().find(|o| o.kind == "DaemonSet").unwrap();
        let env = ds
            .value
            .pointer("/spec/template/spec/containers/0/env")
            .unwrap();
        let get = |n: &str| {
            env.as_array()
                .unwrap()
                .iter()
                .filter(|e| e["name"] == n)
                .map(|e| e["value"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("CALICO_IPV4POOL_CIDR"), ["10.244.0.0/16"]);
        assert_eq!(get("IP_AUTODETECTION_METHOD"), ["kubernetes-internal-ip"]);
        // Applying twice replaces, never duplicates.
        apply_calico_options(&mut calico, &options).unwrap();
        let ds = calico.iter().find(|o| o.kind == "DaemonSet").unwrap();
        let env = ds
            .value
            .pointer("/spec/template/spec/containers/0/env")
            .unwrap();
        assert_eq!(
            env.as_array()
                .unwrap()
                .iter()
                .filter(|e| e["name"] == "CALICO_IPV4POOL_CIDR")
                .count(),
            1
        );
        let mut flannel = parse(&shared("kube-flannel-v0.28.9.yml")).unwrap();
        assert_eq!(
            apply_calico_options(&mut flannel, &options),
            Err(OptionsError::NoCalicoNode)
        );
    }

    #[test]
    fn autodetection_methods() {
        for ok in [
            "first-found",
            "kubernetes-internal-ip",
            "interface=eth.*",
            "cidr=10.0.0.0/8,192.168.1.0/24",
            "can-reach=8.8.8.8",
        ] {
            assert_eq!(check_autodetection_method(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "eth0",
            "interface=",
            "cidr=notacidr",
            "interface=$(reboot) x",
            "magic=1",
        ] {
            assert!(check_autodetection_method(bad).is_err(), "{bad}");
        }
    }
}
