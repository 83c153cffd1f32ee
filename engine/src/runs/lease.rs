//! The cluster side of "one mutating run per cluster": a `kube-system/grappe-workflow` Lease
//! held by the run, renewed while it runs, so that two Grappe instances (two databases) sharing
//! a cluster cannot both change it. The database's unique index covers one instance.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

pub const LEASE_NAMESPACE: &str = "kube-system";
pub const LEASE_NAME: &str = "grappe-workflow";
/// A holder that stops renewing loses the lease after this long.
pub const LEASE_SECONDS: i32 = 30;

/// Errors of the lease.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("the cluster is held by another workflow run: {holder}")]
    Held { holder: String },
    #[error("cannot read or write the lease {LEASE_NAMESPACE}/{LEASE_NAME}")]
    Kube(#[source] kube::Error),
}

fn api(client: &Client) -> Api<Lease> {
    Api::namespaced(client.clone(), LEASE_NAMESPACE)
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

fn expired(spec: &LeaseSpec) -> bool {
    let Some(renew) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let secs = i64::from(spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS));
    renew.0.as_second() + secs < k8s_openapi::jiff::Timestamp::now().as_second()
}

/// Takes the lease for `holder`, or renews it if `holder` holds it, or takes it over from a
/// holder `same_run` says is stale (after a restart, the same run; a run of this instance that
/// ended without giving it back).
///
/// # Errors
/// [`LeaseError::Held`] with the current holder; [`LeaseError::Kube`].
pub async fn acquire(
    client: &Client,
    holder: &str,
    same_run: &(dyn Fn(&str) -> bool + Sync),
) -> Result<(), LeaseError> {
    let api = api(client);
    for _ in 0..3 {
        let current = api.get_opt(LEASE_NAME).await.map_err(LeaseError::Kube)?;
        let spec = LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_duration_seconds: Some(LEASE_SECONDS),
            acquire_time: Some(now()),
            renew_time: Some(now()),
            ..LeaseSpec::default()
        };
        let result = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(LEASE_NAME.to_owned()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                api.create(&PostParams::default(), &lease).await
            }
            Some(mut lease) => {
                let cur = lease.spec.clone().unwrap_or_default();
                let held_by = cur.holder_identity.clone().unwrap_or_default();
                if !held_by.is_empty() && held_by != holder && !same_run(&held_by) && !expired(&cur)
                {
                    return Err(LeaseError::Held { holder: held_by });
                }
                lease.spec = Some(spec);
                api.replace(LEASE_NAME, &PostParams::default(), &lease)
                    .await
            }
        };
        match result {
            Ok(_) => return Ok(()),
            // Someone else wrote it between our read and write: read again.
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(LeaseError::Kube(e)),
        }
    }
    let holder = api
        .get_opt(LEASE_NAME)
        .await
        .map_err(LeaseError::Kube)?
        .and_then(|l| l.spec?.holder_identity)
        .unwrap_or_default();
    Err(LeaseError::Held { holder })
}

/// Renews the lease while `holder` has it.
///
/// # Errors
/// [`LeaseError::Held`] when someone else took it; [`LeaseError::Kube`].
pub async fn renew(client: &Client, holder: &str) -> Result<(), LeaseError> {
    let api = api(client);
    let mut lease = api.get(LEASE_NAME).await.map_err(LeaseError::Kube)?;
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(holder) {
        return Err(LeaseError::Held {
            holder: spec.holder_identity.clone().unwrap_or_default(),
        });
    }
    spec.renew_time = Some(now());
    api.replace(LEASE_NAME, &PostParams::default(), &lease)
        .await
        .map_err(LeaseError::Kube)?;
    Ok(())
}

/// Gives the lease up if `holder` has it.
///
/// # Errors
/// [`LeaseError::Kube`].
pub async fn release(client: &Client, holder: &str) -> Result<(), LeaseError> {
    let api = api(client);
    let Some(mut lease) = api.get_opt(LEASE_NAME).await.map_err(LeaseError::Kube)? else {
        return Ok(());
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(holder) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.renew_time = None;
    spec.acquire_time = None;
    match api
        .replace(LEASE_NAME, &PostParams::default(), &lease)
        .await
    {
        Ok(_) | Err(kube::Error::Api(_)) => Ok(()),
        Err(e) => Err(LeaseError::Kube(e)),
    }
}

#[cfg(test)]
mod mock_tests {
    //! The Lease's exact calls against a mocked API server (tower-test).

    use http::StatusCode;
    use serde_json::{Value, json};

    use super::*;
    use crate::runs::mock::{answer, client};

    const PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/grappe-workflow";

    fn not_found() -> Value {
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound", "message": "not found"})
    }

    #[tokio::test]
    async fn a_free_cluster_gets_a_lease_created_for_the_run() {
        let (client, mut handle) = client();
        let server = tokio::spawn(async move {
            let get = answer(&mut handle, StatusCode::NOT_FOUND, not_found()).await;
            let create = answer(
                &mut handle,
                StatusCode::CREATED,
                json!({
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": LEASE_NAME, "namespace": LEASE_NAMESPACE}
                }),
            )
            .await;
            (get, create)
        });
        acquire(&client, "grappe@host:db/run-7/ada", &|_: &str| false)
            .await
            .expect("acquired");
        let ((get, get_path, _), (post, post_path, lease)) = server.await.expect("server");
        assert_eq!((get.as_str(), get_path.as_str()), ("GET", PATH));
        assert_eq!(post, "POST");
        assert_eq!(
            post_path,
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
        );
        assert_eq!(lease["metadata"]["name"], LEASE_NAME);
        assert_eq!(lease["spec"]["holderIdentity"], "grappe@host:db/run-7/ada");
        assert_eq!(lease["spec"]["leaseDurationSeconds"], LEASE_SECONDS);
    }

    #[tokio::test]
    async fn a_lease_another_run_renews_is_refused_without_a_write() {
        let (client, mut handle) = client();
        let renewed = k8s_openapi::jiff::Timestamp::now().to_string();
        let server = tokio::spawn(async move {
            answer(&mut handle, StatusCode::OK, json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": LEASE_NAME, "namespace": LEASE_NAMESPACE, "resourceVersion": "5"},
                "spec": {"holderIdentity": "grappe@other:db/run-3/bob", "leaseDurationSeconds": 30, "renewTime": renewed}
            }))
            .await;
            // Nothing else may be asked: the handle sees no second request.
            handle
        });
        let err = acquire(&client, "grappe@host:db/run-7/ada", &|_: &str| false)
            .await
            .expect_err("held");
        let mut handle = server.await.expect("server");
        assert!(
            matches!(&err, LeaseError::Held { holder } if holder == "grappe@other:db/run-3/bob"),
            "{err}"
        );
        drop(client);
        assert!(
            handle.next_request().await.is_none(),
            "no write after a refusal"
        );
    }
}
