//! CNI manifests: the catalog of known upstream manifests with their pinned sha256 and what
//! upstream says of them ([`catalog`]), fetching
//! them (from upstream or a mirror), custom manifests by URL or upload (unverified), and
//! content-addressed storage of every manifest used.
//!
//! Parsing into objects and Calico's install options are in [`parse`]; the Tigera operator's
//! custom resources made from a plan's options in [`operator`].

mod catalog;
pub mod operator;
pub mod parse;
mod remote;

pub use catalog::{
    CATALOG, CatalogEntry, Packaging, Part, Support, by_checksum, calico_line, catalog_entry,
    join_parts, kubernetes_minor,
};

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::store::{Store, StoreError};

/// The largest manifest accepted, downloaded or uploaded (Calico's is 240 KB).
pub const MAX_MANIFEST_BYTES: usize = 5 * 1024 * 1024;

/// Errors of getting a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("unknown catalog manifest {0:?}")]
    UnknownCatalogEntry(String),
    #[error("cannot download {url}")]
    Download {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("downloading {url}: HTTP {status}")]
    HttpStatus { url: String, status: u16 },
    #[error("the manifest is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the manifest is empty")]
    Empty,
    #[error("the manifest is not UTF-8 text")]
    NotText,
    #[error("checksum mismatch for {id}: expected sha256 {expected}, got {actual}; refused")]
    ChecksumMismatch {
        id: String,
        expected: String,
        actual: String,
    },
    #[error("only http and https URLs are accepted, not {0:?}")]
    BadUrl(String),
    #[error("{0}: credentials in a URL are refused (they would be stored and shown to everyone)")]
    Credentials(String),
    #[error(
        "{0}: the host is a loopback, private or link-local address; refused (only the manifest mirror's host may be)"
    )]
    PrivateAddress(String),
    #[error("cannot download {0} (the server's log says why)")]
    Unreachable(String),
    #[error("no stored manifest with sha256 {0}")]
    NotStored(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot record the refusal in the audit log")]
    Audit(#[from] crate::audit::AuditError),
}

/// Where a manifest comes from, as the admin chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// A catalog id: downloaded (from the mirror, if any) and checked against its sha256.
    Catalog(&'a str),
    /// Any http(s) URL: downloaded, unverified unless its bytes are a catalog entry's.
    Url(&'a str),
    /// Text from the browser, pasted or read from a file (`file_name` empty when pasted).
    Upload { file_name: &'a str, text: &'a str },
}

/// The source recorded for an uploaded file: `upload:` and its base name, without control
/// characters or path separators, at most 100 characters (`upload:pasted` when nothing is left).
pub(crate) fn upload_source(file_name: &str) -> String {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = base.chars().filter(|c| !c.is_control()).take(100).collect();
    let clean = clean.trim();
    if clean.is_empty() || clean == "." || clean == ".." {
        "upload:pasted".to_owned()
    } else {
        format!("upload:{clean}")
    }
}

/// A manifest's text and where it came from. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub sha256: String,
    pub text: Arc<str>,
    /// The catalog id, the URL, or `upload:<file name>`.
    pub source: String,
    /// The catalog entry, when the text matched its pinned checksum.
    pub catalog: Option<&'static CatalogEntry>,
}

impl Manifest {
    /// Checks size and encoding and computes the checksum of a manifest from anywhere. A text
    /// with a catalog entry's checksum is that catalog manifest (verified), wherever it came from.
    ///
    /// # Errors
    /// [`ManifestError::TooLarge`], [`ManifestError::Empty`] or [`ManifestError::NotText`].
    pub fn from_bytes(bytes: Vec<u8>, source: String) -> Result<Self, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge {
                limit: MAX_MANIFEST_BYTES,
            });
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ManifestError::Empty);
        }
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let text = String::from_utf8(bytes).map_err(|_| ManifestError::NotText)?;
        Ok(Self {
            catalog: by_checksum(&sha256),
            sha256,
            text: text.into(),
            source,
        })
    }

    /// Whether the text is a catalog manifest with its pinned checksum.
    pub fn verified(&self) -> bool {
        self.catalog.is_some()
    }
}

/// Downloads manifests. The mirror, when set, replaces the upstream host for catalog entries:
/// `<mirror>/<file>` (air-gapped sites copy the files there).
#[derive(Debug, Clone)]
pub struct Fetcher {
    http: reqwest::Client,
    mirror: Option<String>,
    guard: remote::Guard,
}

impl Fetcher {
    /// # Errors
    /// When the HTTP client cannot be built (TLS setup).
    pub fn new(mirror: Option<String>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("grappe/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let guard = remote::Guard {
            mirror: mirror
                .as_deref()
                .and_then(|m| reqwest::Url::parse(m).ok())
                .and_then(|u| Some((u.host_str()?.to_owned(), u.port_or_known_default()?))),
        };
        Ok(Self {
            http,
            mirror: mirror.map(|m| m.trim_end_matches('/').to_owned()),
            guard,
        })
    }

    /// The URL a catalog entry is downloaded from (an entry of parts: theirs, joined by ` + `).
    pub fn catalog_url(&self, entry: &CatalogEntry) -> String {
        if !entry.parts.is_empty() {
            let urls: Vec<String> = entry
                .parts
                .iter()
                .map(|p| self.file_url(p.file, p.url))
                .collect();
            return urls.join(" + ");
        }
        self.file_url(entry.file, entry.url)
    }

    fn file_url(&self, file: &str, url: &str) -> String {
        match &self.mirror {
            Some(m) => format!("{m}/{file}"),
            None => url.to_owned(),
        }
    }

    /// Downloads a catalog manifest and refuses it unless its sha256 is the pinned one (an
    /// entry of parts: each part's, then that of the parts joined).
    ///
    /// # Errors
    /// [`ManifestError`]: download failures, size, or [`ManifestError::ChecksumMismatch`].
    pub async fn catalog(&self, id: &str) -> Result<Manifest, ManifestError> {
        let entry =
            catalog_entry(id).ok_or_else(|| ManifestError::UnknownCatalogEntry(id.to_owned()))?;
        let bytes = if entry.parts.is_empty() {
            self.download(&self.catalog_url(entry)).await?
        } else {
            let mut parts = Vec::new();
            for part in entry.parts {
                let bytes = self.download(&self.file_url(part.file, part.url)).await?;
                let actual = hex::encode(Sha256::digest(&bytes));
                if actual != part.sha256 {
                    return Err(ManifestError::ChecksumMismatch {
                        id: part.file.to_owned(),
                        expected: part.sha256.to_owned(),
                        actual,
                    });
                }
                parts.push(bytes);
            }
            join_parts(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>())
        };
        let manifest = Manifest::from_bytes(bytes, entry.id.to_owned())?;
        if manifest.catalog != Some(entry) {
            return Err(ManifestError::ChecksumMismatch {
                id: entry.id.to_owned(),
                expected: entry.sha256.to_owned(),
                actual: manifest.sha256,
            });
        }
        Ok(manifest)
    }

    /// Downloads a custom manifest (unverified), guarded as [`remote`] says; its recorded
    /// source is the URL without credentials, query or fragment.
    ///
    /// # Errors
    /// [`ManifestError`]: a URL that is not http(s) or holds credentials, a private address,
    /// download failures, size.
    pub async fn url(&self, url: &str) -> Result<Manifest, ManifestError> {
        let url = remote::parse(url)?;
        let source = remote::shown(&url);
        let bytes = self.guard.download(url).await?;
        Manifest::from_bytes(bytes, source)
    }

    async fn download(&self, url: &str) -> Result<Vec<u8>, ManifestError> {
        let err = |source| ManifestError::Download {
            url: url.to_owned(),
            source,
        };
        let mut resp = self.http.get(url).send().await.map_err(err)?;
        if !resp.status().is_success() {
            return Err(ManifestError::HttpStatus {
                url: url.to_owned(),
                status: resp.status().as_u16(),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(err)? {
            if body.len() + chunk.len() > MAX_MANIFEST_BYTES {
                return Err(ManifestError::TooLarge {
                    limit: MAX_MANIFEST_BYTES,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Stores a manifest's text under its sha256 (once; later sources do not replace the first).
///
/// # Errors
/// [`ManifestError::Store`] when the database write fails.
pub async fn store(store: &Store, manifest: &Manifest) -> Result<(), ManifestError> {
    store
        .put_manifest(&manifest.sha256, &manifest.text, &manifest.source)
        .await?;
    Ok(())
}

/// Loads a stored manifest by sha256 (the catalog entry is found again by checksum).
///
/// # Errors
/// [`ManifestError::NotStored`] or a store error.
pub async fn load(store: &Store, sha256: &str) -> Result<Manifest, ManifestError> {
    let (text, source) = store
        .get_manifest(sha256)
        .await?
        .ok_or_else(|| ManifestError::NotStored(sha256.to_owned()))?;
    Ok(Manifest {
        sha256: sha256.to_owned(),
        text: text.into(),
        source,
        catalog: by_checksum(sha256),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_sources_keep_a_clean_base_name() {
        assert_eq!(upload_source("calico.yaml"), "upload:calico.yaml");
        assert_eq!(
            upload_source("C:\\Users\\me\\calico.yaml"),
            "upload:calico.yaml"
        );
        assert_eq!(upload_source("../../etc/x\n.yaml"), "upload:x.yaml");
        assert_eq!(upload_source(""), "upload:pasted");
        assert_eq!(upload_source(".."), "upload:pasted");
        assert_eq!(upload_source(&"a".repeat(300)).len(), "upload:".len() + 100);
    }

    #[test]
    fn checksum_and_limits() {
        let m = Manifest::from_bytes(b"kind: ConfigMap\n".to_vec(), "upload:x".into()).unwrap();
        assert_eq!(m.sha256, hex::encode(Sha256::digest(b"kind: ConfigMap\n")));
        assert!(!m.verified());
        assert!(matches!(
            Manifest::from_bytes(vec![b'a'; MAX_MANIFEST_BYTES + 1], "x".into()),
            Err(ManifestError::TooLarge { .. })
        ));
        assert!(matches!(
            Manifest::from_bytes(b" \n".to_vec(), "x".into()),
            Err(ManifestError::Empty)
        ));
        assert!(matches!(
            Manifest::from_bytes(vec![0xff, 0xfe], "x".into()),
            Err(ManifestError::NotText)
        ));
    }

    #[test]
    fn mirror_replaces_the_upstream_host() {
        let f = Fetcher::new(Some("http://mirror.local/cni/".into())).unwrap();
        assert_eq!(
            f.catalog_url(&CATALOG[0]),
            "http://mirror.local/cni/calico-v3.25.1.yaml"
        );
        let f = Fetcher::new(None).unwrap();
        assert_eq!(f.catalog_url(&CATALOG[0]), CATALOG[0].url);
    }
}
