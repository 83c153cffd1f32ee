//! The catalog: known upstream manifests with their pinned sha256 (`../shared/manifests/
//! SOURCES.md`), and for each what upstream says of its release line: the Kubernetes versions it
//! is tested on and when the line reached, or reaches, its end of life. Every plan of an install
//! or an upgrade checks the cluster against these facts.
//!
//! Where the facts come from:
//! - tested Kubernetes versions: Calico's "System requirements for Kubernetes" page of each
//!   release line (docs.tigera.io/calico/<line>/getting-started/kubernetes/requirements; for
//!   3.31 and 3.32 the versioned source in github.com/tigera/docs,
//!   `calico_versioned_docs/version-3.3x/_includes/partials/_system-requirements.mdx`);
//! - end of life: Calico maintains two release lines at a time, a line ending when the line two
//!   after it is released (release notes in github.com/projectcalico/calico): 3.25 ended with
//!   3.27.0 (December 2023), 3.26 with 3.28.0 (May 2024), 3.31 with 3.33.0 (late September
//!   2026); 3.32 ends with 3.34, not released on 2026-12-05.

/// What upstream says of a release line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Support {
    /// The Kubernetes minor versions (1.x) the line is tested on, first and last.
    pub kubernetes: (u32, u32),
    /// The month (`YYYY-MM`) the line reached its end of life; `None` while it is maintained.
    pub end_of_life: Option<&'static str>,
}

impl Support {
    /// Whether Kubernetes `1.minor` is among the tested versions.
    #[must_use]
    pub fn tested_on(&self, minor: u32) -> bool {
        (self.kubernetes.0..=self.kubernetes.1).contains(&minor)
    }

    /// The tested versions as people write them (`1.34 to 1.36`).
    #[must_use]
    pub fn tested_range(&self) -> String {
        format!("1.{} to 1.{}", self.kubernetes.0, self.kubernetes.1)
    }

    /// Whether the line's end of life has come by `month` (`YYYY-MM`).
    #[must_use]
    pub fn ended_by(&self, month: &str) -> bool {
        self.end_of_life.is_some_and(|end| end <= month)
    }
}

/// A known upstream manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogEntry {
    /// Stable id, e.g. `calico-v3.25.1`.
    pub id: &'static str,
    /// `Calico` or `Flannel`, as the state's CNI detection names them.
    pub cni: &'static str,
    pub version: &'static str,
    pub packaging: Packaging,
    /// File name under a mirror base URL (for an entry of parts: a description of them).
    pub file: &'static str,
    pub url: &'static str,
    /// The file's sha256; for an entry of parts, that of the parts joined ([`join_parts`]).
    pub sha256: &'static str,
    /// The upstream files an entry is made of, in apply order (none: the entry is one file).
    pub parts: &'static [Part],
    /// What upstream says of its release line (none is published for Flannel).
    pub support: Option<Support>,
}

impl CatalogEntry {
    /// Whether the entry installs with the Tigera operator.
    #[must_use]
    pub fn operator(&self) -> bool {
        matches!(self.packaging, Packaging::Operator { .. })
    }

    /// How people name it: `Calico v3.32.1`, `Calico v3.32.1 with the Tigera operator`.
    #[must_use]
    pub fn label(&self) -> String {
        match self.packaging {
            Packaging::Manifest => format!("{} {}", self.cni, self.version),
            Packaging::Operator { native_v3: false } => {
                format!("{} {} with the Tigera operator", self.cni, self.version)
            }
            Packaging::Operator { native_v3: true } => format!(
                "{} {} with the Tigera operator, native v3 resources (tech preview)",
                self.cni, self.version
            ),
        }
    }
}

/// Several upstream files as one manifest: each followed by a newline if it lacks one, a
/// document separator between them.
#[must_use]
pub fn join_parts(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"---\n");
        }
        out.extend_from_slice(part);
        if !out.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    out
}

/// How an entry installs its CNI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packaging {
    /// One manifest (`calico.yaml`), everything in it applied, with the install's options.
    Manifest,
    /// The Tigera operator: its CRDs and its Deployment (the entry's parts, joined), then an
    /// `Installation` and the optional components made from the plan's options; the operator
    /// creates calico-system's workloads. `native_v3`: Calico's resources as
    /// `projectcalico.org/v3` CRDs (`v3_projectcalico_org.yaml`, a tech preview in 3.32).
    Operator { native_v3: bool },
}

/// One upstream file of an entry made of several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// Its path under the manifest mirror (and in `../shared/manifests`).
    pub file: &'static str,
    pub url: &'static str,
    pub sha256: &'static str,
}

/// Calico v3.32.1's operator files (`../shared/manifests/SOURCES.md`).
const TIGERA_OPERATOR_V3321: Part = Part {
    file: "calico-operator-v3.32.1/tigera-operator.yaml",
    url: "https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/tigera-operator.yaml",
    sha256: "f18e073794207d372606bc3ea6f8fd73972f86d6828f4ba666dfe0d4aa8ab07f",
};
const V3321_SUPPORT: Support = Support {
    kubernetes: (34, 36),
    end_of_life: None,
};

/// The catalog (`../shared/manifests/SOURCES.md`). The seed's Calico first.
pub const CATALOG: &[CatalogEntry] = &[
    CatalogEntry {
        id: "calico-v3.25.1",
        cni: "Calico",
        version: "v3.25.1",
        packaging: Packaging::Manifest,
        parts: &[],
        file: "calico-v3.25.1.yaml",
        url: "https://raw.githubusercontent.com/projectcalico/calico/v3.25.1/manifests/calico.yaml",
        sha256: "907e3aa4ef102526a020735bbc053611b8c284bcadcbbb476f9ba46a4fd78329",
        support: Some(Support {
            kubernetes: (23, 26),
            end_of_life: Some("2023-12"),
        }),
    },
    CatalogEntry {
        id: "calico-v3.26.5",
        cni: "Calico",
        version: "v3.26.5",
        packaging: Packaging::Manifest,
        parts: &[],
        file: "calico-v3.26.5.yaml",
        url: "https://raw.githubusercontent.com/projectcalico/calico/v3.26.5/manifests/calico.yaml",
        sha256: "2468a8c939658b959860b0e78c3d2f420c53bb08af7511f3d335e051f9db8b22",
        support: Some(Support {
            kubernetes: (24, 27),
            end_of_life: Some("2024-05"),
        }),
    },
    CatalogEntry {
        id: "calico-v3.31.7",
        cni: "Calico",
        version: "v3.31.7",
        packaging: Packaging::Manifest,
        parts: &[],
        file: "calico-v3.31.7.yaml",
        url: "https://raw.githubusercontent.com/projectcalico/calico/v3.31.7/manifests/calico.yaml",
        sha256: "d6d8a489a4ed8e5b8efd8b339047b496ca657b55ee2e3618e791507b0a853e8d",
        support: Some(Support {
            kubernetes: (32, 34),
            end_of_life: Some("2026-09"),
        }),
    },
    CatalogEntry {
        id: "calico-v3.32.1",
        cni: "Calico",
        version: "v3.32.1",
        packaging: Packaging::Manifest,
        parts: &[],
        file: "calico-v3.32.1.yaml",
        url: "https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/calico.yaml",
        sha256: "a1df919d9721cf667accdc3e72848911b0cb25cfab7d2478ad0c996302c95744",
        support: Some(V3321_SUPPORT),
    },
    CatalogEntry {
        id: "calico-operator-v3.32.1",
        cni: "Calico",
        version: "v3.32.1",
        packaging: Packaging::Operator { native_v3: false },
        file: "calico-operator-v3.32.1/{operator-crds,tigera-operator}.yaml",
        url: "https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/",
        sha256: "c554e599712b7765b146d56b4baf054d386a4d4e1c59a4ed65f09503d8491621",
        parts: &[
            Part {
                file: "calico-operator-v3.32.1/operator-crds.yaml",
                url: "https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/operator-crds.yaml",
                sha256: "192f8b2d934ef24b62e86b7e1a6e1762d1c8af26a916f78057bc13fa5ed60f71",
            },
            TIGERA_OPERATOR_V3321,
        ],
        support: Some(V3321_SUPPORT),
    },
    CatalogEntry {
        id: "calico-operator-v3.32.1-native-v3",
        cni: "Calico",
        version: "v3.32.1",
        packaging: Packaging::Operator { native_v3: true },
        file: "calico-operator-v3.32.1/{v3_projectcalico_org,tigera-operator}.yaml",
        url: "https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/",
        sha256: "a9c5f2eee35ab0bd23b3627a157872f63a2bd83ccb82f9eb9b9dca87e3900427",
        parts: &[
            Part {
                file: "calico-operator-v3.32.1/v3_projectcalico_org.yaml",
                url: "https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/v3_projectcalico_org.yaml",
                sha256: "3486a86cad6e3daa7733f03ceff2755cae25b83511d820d3fc83121b27ba6429",
            },
            TIGERA_OPERATOR_V3321,
        ],
        support: Some(V3321_SUPPORT),
    },
    CatalogEntry {
        id: "flannel-v0.28.9",
        cni: "Flannel",
        version: "v0.28.9",
        packaging: Packaging::Manifest,
        parts: &[],
        file: "kube-flannel-v0.28.9.yml",
        url: "https://raw.githubusercontent.com/flannel-io/flannel/v0.28.9/Documentation/kube-flannel.yml",
        sha256: "e875824be2f552b45711dbda91af81b17eb961d00025d914d9fef18fad8f09c0",
        support: None,
    },
];

/// Looks up a catalog entry by id.
pub fn catalog_entry(id: &str) -> Option<&'static CatalogEntry> {
    CATALOG.iter().find(|e| e.id == id)
}

/// The catalog entry whose pinned checksum is `sha256`: a text with that checksum is that
/// manifest, wherever it came from.
pub fn by_checksum(sha256: &str) -> Option<&'static CatalogEntry> {
    CATALOG.iter().find(|e| e.sha256 == sha256)
}

/// The Kubernetes minor version of `version` (`v1.35.8` → 35).
#[must_use]
pub fn kubernetes_minor(version: &str) -> Option<u32> {
    let v = version.trim().trim_start_matches('v');
    let mut parts = v.split('.');
    (parts.next()? == "1").then_some(())?;
    parts.next()?.parse().ok()
}

/// The support facts of a Calico version (`v3.31.2`): its catalog line's, by minor version.
#[must_use]
pub fn calico_line(version: &str) -> Option<Support> {
    let minor = |v: &str| {
        let v = v.trim_start_matches('v');
        let mut parts = v.split('.');
        Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
    };
    let wanted = minor(version)?;
    CATALOG
        .iter()
        .filter(|e| e.cni == "Calico")
        .find(|e| minor(e.version).as_ref() == Some(&wanted))
        .and_then(|e| e.support)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_facts_read_as_upstream_states_them() {
        let v3321 = catalog_entry("calico-v3.32.1")
            .and_then(|e| e.support)
            .expect("facts");
        assert!(v3321.tested_on(35) && !v3321.tested_on(33));
        assert_eq!(v3321.tested_range(), "1.34 to 1.36");
        assert!(!v3321.ended_by("2026-12"));
        let v3317 = calico_line("v3.31.3").expect("the 3.31 line");
        assert!(v3317.ended_by("2026-12") && !v3317.ended_by("2026-08"));
        assert_eq!(calico_line("v3.29.0"), None);
        // Every pinned manifest has the checksum SOURCES.md gives (64 hex digits).
        for e in CATALOG {
            assert_eq!(e.sha256.len(), 64, "{}", e.id);
        }
    }

    #[test]
    fn an_entry_of_parts_is_pinned_to_its_parts_joined() {
        use sha2::{Digest, Sha256};
        let dir = std::env::var("GRAPPE_MANIFESTS").map_or_else(
            |_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/manifests"),
            std::path::PathBuf::from,
        );
        let mut checked = 0;
        for e in CATALOG.iter().filter(|e| !e.parts.is_empty()) {
            let parts: Vec<Vec<u8>> = e
                .parts
                .iter()
                .map(|p| {
                    let bytes = std::fs::read(dir.join(p.file))
                        .unwrap_or_else(|err| panic!("{} (the shared manifests): {err}", p.file));
                    assert_eq!(hex::encode(Sha256::digest(&bytes)), p.sha256, "{}", p.file);
                    bytes
                })
                .collect();
            let joined = join_parts(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>());
            assert_eq!(hex::encode(Sha256::digest(&joined)), e.sha256, "{}", e.id);
            assert!(e.operator() && e.label().contains("Tigera operator"));
            checked += 1;
        }
        assert_eq!(checked, 2);
        assert_eq!(join_parts(&[b"a: 1", b"b: 2\n"]), b"a: 1\n---\nb: 2\n");
    }
}
