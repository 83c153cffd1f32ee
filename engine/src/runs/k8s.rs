//! The Kubernetes calls of workflow runs, on any kind through the dynamic API: resolving a kind,
//! reading an object, server-side apply (also as a dry run), deleting (and what holds a deletion),
//! restoring a snapshot; and comparing objects field by field.

use std::collections::HashMap;

use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Scope};
use serde_json::Value;

use grappe_views::runs::FieldChange;

/// The field manager of everything Grappe applies.
pub const FIELD_MANAGER: &str = "grappe";

/// How many field changes a plan shows per object.
pub const MAX_CHANGES_SHOWN: usize = 50;

/// Errors of the Kubernetes side of a run.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("the API server does not know {api_version} {kind}")]
    UnknownKind {
        api_version: String,
        kind: String,
        #[source]
        source: kube::Error,
    },
    #[error("{verb} {object}")]
    Call {
        verb: &'static str,
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("{object} is not gone after {seconds} s ({holding})")]
    NotGone {
        object: String,
        seconds: u64,
        holding: String,
    },
    #[error("cancelled")]
    Cancelled,
    #[error("object {0} cannot be encoded")]
    Encode(String, #[source] serde_json::Error),
}

impl KubeError {
    /// Whether the API server did not answer (or answered it cannot serve now: 5xx): a wait
    /// goes on through it, as a person would retry, until its own timeout.
    #[must_use]
    pub fn unreachable(&self) -> bool {
        let source = match self {
            Self::Call { source, .. } | Self::UnknownKind { source, .. } => source,
            _ => return false,
        };
        match source {
            kube::Error::Api(status) => status.code >= 500,
            kube::Error::HyperError(_) | kube::Error::Service(_) => true,
            _ => false,
        }
    }
}

/// A reference to one object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn key(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{ns}/{}", self.kind, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

/// Resolves kinds to API resources once per run (discovery per kind, cached).
pub struct Resolver {
    client: Client,
    cache: HashMap<(String, String), (ApiResource, bool)>,
}

impl Resolver {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cache: HashMap::new(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The API for one object (namespaced objects without a namespace go to `default`, as
    /// kubectl does).
    ///
    /// # Errors
    /// [`KubeError::UnknownKind`] when discovery does not know the kind.
    pub async fn api(&mut self, obj: &ObjectRef) -> Result<Api<DynamicObject>, KubeError> {
        let key = (obj.api_version.clone(), obj.kind.clone());
        if !self.cache.contains_key(&key) {
            let (group, version) = match obj.api_version.split_once('/') {
                Some((g, v)) => (g, v),
                None => ("", obj.api_version.as_str()),
            };
            let gvk = GroupVersionKind::gvk(group, version, &obj.kind);
            let (ar, caps) = kube::discovery::pinned_kind(&self.client, &gvk)
                .await
                .map_err(|source| KubeError::UnknownKind {
                    api_version: obj.api_version.clone(),
                    kind: obj.kind.clone(),
                    source,
                })?;
            self.cache
                .insert(key.clone(), (ar, caps.scope == Scope::Namespaced));
        }
        let (ar, namespaced) = &self.cache[&key];
        Ok(if *namespaced {
            Api::namespaced_with(
                self.client.clone(),
                obj.namespace.as_deref().unwrap_or("default"),
                ar,
            )
        } else {
            Api::all_with(self.client.clone(), ar)
        })
    }

    /// The API group, plural resource name and scope of an object's kind (for access reviews).
    ///
    /// # Errors
    /// [`KubeError::UnknownKind`].
    pub async fn resource(&mut self, obj: &ObjectRef) -> Result<(String, String, bool), KubeError> {
        self.api(obj).await?;
        let (ar, namespaced) = &self.cache[&(obj.api_version.clone(), obj.kind.clone())];
        Ok((ar.group.clone(), ar.plural.clone(), *namespaced))
    }

    /// Drops the cached resolution of a kind (after its CRD appeared or went).
    pub fn forget(&mut self) {
        self.cache.clear();
    }
}

fn call(verb: &'static str, obj: &ObjectRef) -> impl FnOnce(kube::Error) -> KubeError {
    let object = obj.key();
    move |source| KubeError::Call {
        verb,
        object,
        source,
    }
}

/// The object as the API server has it now, or `None`.
///
/// # Errors
/// [`KubeError`] on any failure but NotFound.
pub async fn get(api: &Api<DynamicObject>, obj: &ObjectRef) -> Result<Option<Value>, KubeError> {
    let found = get_opt(api, obj).await?;
    found
        .map(|o| serde_json::to_value(o).map_err(|e| KubeError::Encode(obj.key(), e)))
        .transpose()
}

/// The object, `None` when it is not there: a 404 whether the object is missing (a `NotFound`
/// status) or its kind no longer is (a CRD deleted since discovery answers with a plain
/// "404 page not found", which `Api::get_opt` does not take for absence).
async fn get_opt(
    api: &Api<DynamicObject>,
    obj: &ObjectRef,
) -> Result<Option<DynamicObject>, KubeError> {
    match api.get(&obj.name).await {
        Ok(o) => Ok(Some(o)),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
        Err(e) => Err(call("get", obj)(e)),
    }
}

/// Server-side apply with field manager `grappe`, forcing conflicts (as `kubectl apply
/// --server-side --force-conflicts`); `dry_run` changes nothing.
///
/// # Errors
/// [`KubeError::Call`].
pub async fn apply(
    api: &Api<DynamicObject>,
    obj: &ObjectRef,
    value: &Value,
    dry_run: bool,
) -> Result<Value, KubeError> {
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = dry_run;
    let out = api
        .patch(&obj.name, &params, &Patch::Apply(value))
        .await
        .map_err(call(if dry_run { "dry-run apply" } else { "apply" }, obj))?;
    serde_json::to_value(out).map_err(|e| KubeError::Encode(obj.key(), e))
}

/// A foreground deletion the API server accepted, for [`Deleting::remaining`].
#[derive(Debug)]
pub struct Deleting {
    api: Api<DynamicObject>,
    obj: ObjectRef,
    uid: Option<String>,
}

/// How a deletion treats the object's dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Dependents first: the object is gone only when they are (workloads, so that "deleted"
    /// means no pod of it is left).
    Foreground,
    /// The object first, its dependents after it, as `kubectl delete` does. For objects a
    /// controller cleans up behind its own finalizer (the Tigera operator's `Installation`):
    /// under foreground propagation the garbage collector waits for dependents the controller
    /// only removes once the object is gone, and neither moves.
    Background,
}

/// Deletes with the given propagation: `None` when the object was already gone, else the
/// deletion to wait for (a CRD's can take minutes while the API server's finalizer removes
/// its custom resources).
///
/// # Errors
/// [`KubeError::Call`].
pub async fn delete(
    api: &Api<DynamicObject>,
    obj: &ObjectRef,
    propagation: Propagation,
) -> Result<Option<Deleting>, KubeError> {
    let uid = match get_opt(api, obj).await? {
        Some(o) => o.metadata.uid,
        None => return Ok(None),
    };
    let params = match propagation {
        Propagation::Foreground => DeleteParams::foreground(),
        Propagation::Background => DeleteParams::background(),
    };
    match api.delete(&obj.name, &params).await {
        Ok(_) => Ok(Some(Deleting {
            api: api.clone(),
            obj: obj.clone(),
            uid,
        })),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
        Err(e) => Err(call("delete", obj)(e)),
    }
}

impl Deleting {
    /// The object being deleted.
    #[must_use]
    pub fn object(&self) -> &ObjectRef {
        &self.obj
    }

    /// Its uid, which its dependents' owner references name.
    #[must_use]
    pub fn uid(&self) -> Option<&str> {
        self.uid.as_deref()
    }

    /// The object while it is still there (same uid), `None` once it is gone.
    ///
    /// # Errors
    /// [`KubeError::Call`].
    pub async fn remaining(&self) -> Result<Option<DynamicObject>, KubeError> {
        Ok(get_opt(&self.api, &self.obj)
            .await?
            .filter(|o| o.metadata.uid == self.uid))
    }
}

/// What keeps a deleted object in place: its finalizers and the message of a `Terminating`
/// condition (a CRD's, while the API server deletes its custom resources).
#[must_use]
pub fn holding(o: &DynamicObject) -> String {
    let mut parts = Vec::new();
    match o.metadata.finalizers.as_deref() {
        Some(f) if !f.is_empty() => parts.push(format!("finalizers {}", f.join(", "))),
        _ => parts.push("no finalizers".to_owned()),
    }
    let conditions = o
        .data
        .pointer("/status/conditions")
        .and_then(Value::as_array);
    if let Some(c) = conditions
        .into_iter()
        .flatten()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Terminating"))
    {
        let field = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default();
        parts.push(format!(
            "Terminating {}: {}",
            field("reason"),
            field("message")
        ));
    }
    parts.join("; ")
}

/// Puts an object back as it was in `before`: replaced when it exists, created when not.
///
/// # Errors
/// [`KubeError`] on a failed call.
pub async fn restore(
    api: &Api<DynamicObject>,
    obj: &ObjectRef,
    before: &Value,
) -> Result<&'static str, KubeError> {
    let mut value = before.clone();
    strip_server_fields(&mut value);
    let current = get_opt(api, obj).await?;
    let mut object: DynamicObject =
        serde_json::from_value(value).map_err(|e| KubeError::Encode(obj.key(), e))?;
    match current {
        Some(current) => {
            object.metadata.resource_version = current.metadata.resource_version;
            api.replace(&obj.name, &PostParams::default(), &object)
                .await
                .map_err(call("replace", obj))?;
            Ok("restored")
        }
        None => {
            api.create(&PostParams::default(), &object)
                .await
                .map_err(call("create", obj))?;
            Ok("recreated")
        }
    }
}

/// Removes what the server sets and what a restore must not send back.
fn strip_server_fields(v: &mut Value) {
    if let Some(obj) = v.as_object_mut() {
        obj.remove("status");
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            for f in [
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "generation",
                "managedFields",
                "selfLink",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ] {
                meta.remove(f);
            }
        }
    }
}

/// Annotations that controllers bump on every rollout.
const VOLATILE_ANNOTATIONS: &[&str] = &[
    "deprecated.daemonset.template.generation",
    "deployment.kubernetes.io/revision",
    "kubectl.kubernetes.io/last-applied-configuration",
];

/// The object without what the server and controllers maintain (status, versions, managed
/// fields, rollout counters): what "the same object" means when comparing.
pub fn normalize(v: &Value) -> Value {
    let mut v = v.clone();
    strip_server_fields(&mut v);
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut)
        && let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut)
    {
        for a in VOLATILE_ANNOTATIONS {
            ann.remove(*a);
        }
        if ann.is_empty() {
            meta.remove("annotations");
        }
    }
    v
}

/// Field-level differences between two objects (normalized first), as JSON pointers.
/// Returns the first [`MAX_CHANGES_SHOWN`] and the total.
///
/// A Secret's values (`data`, `stringData`) are never shown: a plan is read by every viewer and
/// logged; a changed value reads "secret value, sha256 1a2b3c4d" (its digest's first 32 bits,
/// enough to see which values change, not to read them).
pub fn diff(before: &Value, after: &Value) -> (Vec<FieldChange>, usize) {
    let mut out = Vec::new();
    let mut total = 0;
    let secret = [before, after]
        .iter()
        .any(|v| v.get("kind").and_then(Value::as_str) == Some("Secret"));
    walk(
        &normalize(before),
        &normalize(after),
        &mut String::new(),
        &mut Changes {
            out: &mut out,
            total: &mut total,
            secret,
        },
    );
    (out, total)
}

struct Changes<'a> {
    out: &'a mut Vec<FieldChange>,
    total: &'a mut usize,
    /// The object is a Secret: its values are redacted.
    secret: bool,
}

/// The paths of a Secret that hold its values: its data, and the copy of the whole object
/// that `kubectl apply` keeps in an annotation.
const SECRET_VALUE_PATHS: [&str; 3] = [
    "/data",
    "/stringData",
    "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
];

impl Changes<'_> {
    fn shown(&self, path: &str, v: &Value) -> Option<String> {
        let value_path = SECRET_VALUE_PATHS
            .iter()
            .any(|p| path == *p || path.starts_with(&format!("{p}/")));
        if self.secret && value_path {
            redacted(v)
        } else {
            shown(v)
        }
    }
}

/// `object` with a Secret's values (`data`, `stringData`) replaced by their digests, as
/// [`diff`] shows them; any other object as it is.
pub fn without_secret_values(object: &Value) -> Value {
    let mut shown = object.clone();
    if object.get("kind").and_then(Value::as_str) == Some("Secret") {
        for field in ["data", "stringData"] {
            if let Some(Value::Object(values)) = shown.get_mut(field) {
                for v in values.values_mut() {
                    *v = redacted(v).map_or(Value::Null, Value::String);
                }
            }
        }
        if let Some(applied) = shown
            .pointer_mut("/metadata/annotations")
            .and_then(|a| a.get_mut("kubectl.kubernetes.io/last-applied-configuration"))
        {
            *applied = redacted(applied).map_or(Value::Null, Value::String);
        }
    }
    shown
}

fn redacted(v: &Value) -> Option<String> {
    use sha2::{Digest, Sha256};
    if v.is_null() {
        return None;
    }
    let digest = Sha256::digest(v.to_string().as_bytes());
    Some(format!(
        "secret value, sha256 {}",
        hex::encode(&digest[..4])
    ))
}

fn walk(a: &Value, b: &Value, path: &mut String, changes: &mut Changes<'_>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let len = path.len();
                path.push('/');
                path.push_str(&k.replace('~', "~0").replace('/', "~1"));
                walk(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    path,
                    changes,
                );
                path.truncate(len);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                walk(p, q, path, changes);
                path.truncate(len);
            }
        }
        _ => {
            *changes.total += 1;
            if changes.out.len() < MAX_CHANGES_SHOWN {
                let change = FieldChange {
                    path: if path.is_empty() {
                        "/".into()
                    } else {
                        path.clone()
                    },
                    before: changes.shown(path, a),
                    after: changes.shown(path, b),
                };
                changes.out.push(change);
            }
        }
    }
}

fn shown(v: &Value) -> Option<String> {
    if v.is_null() {
        return None;
    }
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some(if text.chars().count() > 160 {
        let cut: String = text.chars().take(157).collect();
        format!("{cut}…")
    } else {
        text
    })
}

#[cfg(test)]
mod tests;
