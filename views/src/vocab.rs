//! The words that cross crates, defined once: run and step statuses, a check's level, the
//! workflow ids. Each is an enum stored and sent as its text (`running`, `cni.install`), so the
//! engine, the database, the JSON and the pages agree, and nothing compares string literals.

/// An enum whose values are texts: `as_str`, `parse`, `ALL`, `Display`, `TryFrom<String>` (a
/// database row), and serde as the text. Exported: the engine's own vocabularies (an audit
/// record's outcome, a user's language) use it too.
#[macro_export]
macro_rules! vocabulary {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$(Self::$variant),+];

            /// The text it is stored and sent as.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// The value of a text (`None` for any other).
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        // Compared with a text as it is stored and sent (tests and JSON read it that way).
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::vocab::UnknownWord;

            /// The value of a stored text (the database's rows are read through it).
            fn try_from(text: String) -> Result<Self, $crate::vocab::UnknownWord> {
                Self::parse(&text).ok_or($crate::vocab::UnknownWord {
                    vocabulary: stringify!($name),
                    text,
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&text).ok_or_else(|| {
                    ::serde::de::Error::custom(format!(
                        "unknown {} {text:?}",
                        stringify!($name)
                    ))
                })
            }
        }
    };
}

/// A text that is no word of its vocabulary (a corrupt row, a request from another version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownWord {
    pub vocabulary: &'static str,
    pub text: String,
}

impl std::fmt::Display for UnknownWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown {} {:?}", self.vocabulary, self.text)
    }
}

impl std::error::Error for UnknownWord {}

vocabulary!(
    /// A run's status.
    RunStatus {
        Running => "running",
        /// Left running by a process that stopped: resume or abandon it.
        Interrupted => "interrupted",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
        Abandoned => "abandoned",
    }
);

impl RunStatus {
    /// Neither running nor interrupted.
    pub fn finished(self) -> bool {
        !matches!(self, Self::Running | Self::Interrupted)
    }
}

vocabulary!(
    /// A step's status.
    StepStatus {
        Pending => "pending",
        Running => "running",
        Done => "done",
        Failed => "failed",
        Cancelled => "cancelled",
        Interrupted => "interrupted",
    }
);

vocabulary!(
    /// A plan check's level; a failed check blocks the start.
    Level {
        Pass => "pass",
        Warn => "warn",
        Fail => "fail",
    }
);

vocabulary!(
    /// The workflows, by the id their runs are stored with.
    Workflow {
        CniInstall => "cni.install",
        CniRollback => "cni.rollback",
        CniRemove => "cni.remove",
        /// A manifest install of Calico handed to the Tigera operator, node by node.
        CniMigrate => "cni.migrate",
        /// Leaked IPAM addresses released.
        IpamRelease => "ipam.release",
        NodeDrain => "node.drain",
        NodeReset => "node.reset",
        ApiserverRecover => "apiserver.recover",
    }
);

vocabulary!(
    /// What a user may do. Ordered: each role can do what the previous one can.
    Role {
        /// Reads every page.
        Viewer => "viewer",
        /// Also runs read-only checks and reversible node actions (cordon, drain).
        Operator => "operator",
        /// Also installs and removes CNIs, resets nodes, manages users.
        Admin => "admin",
    }
);

impl Role {
    /// Whether this role includes `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

vocabulary!(
    /// What a plan will do to one object.
    Planned {
        Create => "create",
        Update => "update",
        Unchanged => "unchanged",
        Delete => "delete",
        Restore => "restore",
        /// Nothing to do: the object is already gone.
        Absent => "absent",
        /// Left to the Tigera operator, which deletes it once its own copy runs in
        /// calico-system (a migration); snapshotted so that a rollback puts it back.
        Move => "move",
        /// Left to the Tigera operator, which rewrites it under the same name (a migration);
        /// snapshotted so that a rollback puts it back.
        Handover => "handover",
    }
);

vocabulary!(
    /// What a drain does to one pod, as `kubectl drain` decides it.
    Verdict {
        /// Evicted through the Eviction API (PodDisruptionBudgets apply).
        Evict => "evict",
        /// Deleted (eviction disabled: PodDisruptionBudgets do not apply).
        Delete => "delete",
        /// Left alone: DaemonSet pod, mirror pod, or terminating for longer than the skip
        /// timeout.
        Skip => "skip",
        /// Stops the drain before anything is evicted (emptyDir without the option, no
        /// controller without force, DaemonSet pods without ignore).
        Blocked => "blocked",
    }
);

impl Verdict {
    /// Whether the drain removes the pod.
    pub fn removes(self) -> bool {
        matches!(self, Self::Evict | Self::Delete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_travel_as_their_text_and_unknown_texts_are_refused() {
        for s in RunStatus::ALL {
            let json = serde_json::to_string(s).expect("json");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<RunStatus>(&json).ok(), Some(*s));
        }
        assert_eq!(Workflow::parse("cni.install"), Some(Workflow::CniInstall));
        assert!(serde_json::from_str::<Level>("\"maybe\"").is_err());
        assert!(RunStatus::Cancelled.finished() && !RunStatus::Interrupted.finished());
        assert_eq!(Role::try_from("admin".to_owned()), Ok(Role::Admin));
        let err = Planned::try_from("erase".to_owned()).expect_err("not a word");
        assert_eq!(err.to_string(), "unknown Planned \"erase\"");
        assert!(Role::Admin.allows(Role::Operator) && !Role::Viewer.allows(Role::Operator));
    }
}
