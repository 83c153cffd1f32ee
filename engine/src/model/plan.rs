//! A plan as the engine seals and stores it: what the user consents to. The pages never see it;
//! they get [`Plan::view`], computed from it, so a change to what a page shows changes neither
//! the hash of a plan nor the record of a run.

use grappe_views::runs::{CheckView, PlanDetail, PlanView, PlannedObjectView};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::names::ClusterName;

pub use grappe_views::vocab::Workflow;

/// A workflow's plan of a run: computed without changing anything, sealed by its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub cluster: ClusterName,
    pub workflow: Workflow,
    /// What the plan is for, e.g. `Calico v3.25.1` or `rollback of run 12`.
    pub title: String,
    pub manifest_source: Option<String>,
    pub manifest_sha256: Option<String>,
    /// The manifest matched its catalog checksum.
    pub verified: bool,
    /// Options as recorded (e.g. CALICO_IPV4POOL_CIDR).
    pub options: Vec<(String, String)>,
    pub objects: Vec<PlannedObjectView>,
    pub checks: Vec<CheckView>,
    /// The workflow's own preview.
    #[serde(default)]
    pub detail: PlanDetail,
    /// What the user types to confirm: the cluster's name unless the workflow says otherwise.
    #[serde(default)]
    pub confirm: String,
    /// The request the plan was made from: a start plans again from it.
    #[serde(default)]
    pub request: Value,
    pub hash: String,
}

impl Plan {
    /// An unsealed plan of `workflow` on `cluster` made from `request`, confirmed by typing the
    /// cluster's name, with nothing in it yet.
    pub fn new(
        cluster: &ClusterName,
        workflow: Workflow,
        title: impl Into<String>,
        request: Value,
    ) -> Self {
        Self {
            cluster: cluster.clone(),
            workflow,
            title: title.into(),
            manifest_source: None,
            manifest_sha256: None,
            verified: false,
            options: Vec::new(),
            objects: Vec::new(),
            checks: Vec::new(),
            detail: PlanDetail::Objects,
            confirm: cluster.to_string(),
            request,
            hash: String::new(),
        }
    }

    /// A plan as a run stored it. Runs stored before plans had a typed detail kept one optional
    /// field per workflow (`drain`, `reset`, `recovery`): those read as the detail they were.
    ///
    /// # Errors
    /// The JSON error when `text` is no plan.
    pub fn stored(text: &str) -> Result<Self, serde_json::Error> {
        let mut value: Value = serde_json::from_str(text)?;
        if let Some(fields) = value.as_object_mut()
            && !fields.contains_key("detail")
        {
            for kind in ["drain", "reset", "recovery"] {
                if let Some(preview) = fields.remove(kind).filter(|p| !p.is_null()) {
                    fields.insert(
                        "detail".into(),
                        serde_json::json!({ "kind": kind, "preview": preview }),
                    );
                }
            }
        }
        serde_json::from_value(value)
    }

    /// Count of objects per action.
    pub fn count(&self, action: grappe_views::runs::Planned) -> usize {
        self.objects.iter().filter(|o| o.action == action).count()
    }

    /// Whether no check failed.
    pub fn runnable(&self) -> bool {
        self.checks
            .iter()
            .all(|c| c.level != grappe_views::vocab::Level::Fail)
    }

    /// The plan as pages show it.
    pub fn view(&self) -> PlanView {
        PlanView {
            cluster: self.cluster.to_string(),
            workflow: self.workflow,
            title: self.title.clone(),
            manifest_source: self.manifest_source.clone(),
            manifest_sha256: self.manifest_sha256.clone(),
            verified: self.verified,
            options: self.options.clone(),
            objects: self.objects.clone(),
            checks: self.checks.clone(),
            detail: self.detail.clone(),
            confirm_word: self.confirm.clone(),
            request: self.request.to_string(),
            hash: self.hash.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_stored_with_one_field_per_workflow_reads_as_its_detail() {
        let legacy = r#"{"cluster":"lab","workflow":"node.reset","title":"reset rigel",
            "manifest_source":null,"manifest_sha256":null,"verified":false,"options":[],
            "objects":[],"checks":[],"drain":null,"recovery":null,
            "reset":{"node":"rigel","endpoint":"root@10.0.0.2:22","host_key":"SHA256:x",
            "control_plane":false,"node_status":"Ready","drain_first":true,"options":{},
            "approval":false},"hash":"ab"}"#;
        let plan = Plan::stored(legacy).expect("a legacy plan");
        match &plan.detail {
            PlanDetail::Reset(r) => assert_eq!(r.node, "rigel"),
            other => panic!("not a reset's detail: {other:?}"),
        }
        assert_eq!(plan.workflow, Workflow::NodeReset);
        assert_eq!(plan.hash, "ab");
        // What is stored now reads back as it was.
        let now = serde_json::to_string(&plan).expect("json");
        assert_eq!(Plan::stored(&now).expect("a plan"), plan);
        assert!(Plan::stored(r#"{"cluster":"Not A Name"}"#).is_err());
    }

    #[test]
    fn a_new_plan_is_confirmed_with_the_cluster_name() {
        let lab = ClusterName::parse("lab").expect("name");
        let plan = Plan::new(&lab, Workflow::CniRemove, "remove", serde_json::json!({}));
        assert_eq!(plan.view().confirm_word, "lab");
        assert_eq!(plan.view().request, "{}");
        assert!(plan.runnable());
    }
}
