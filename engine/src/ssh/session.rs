//! An open SSH connection to one host: the host-key check of the handshake, and fixed scripts
//! run with their output streamed and bounded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::{PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, client};

use super::{Endpoint, Script, SshError};

/// What a finished command returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub exit: Option<u32>,
    /// stdout and stderr interleaved as they came, cut at [`MAX_OUTPUT`].
    pub text: String,
    pub truncated: bool,
}

impl Output {
    pub fn success(&self) -> bool {
        self.exit == Some(0)
    }
}

/// Output kept per command; the rest is counted and dropped.
pub const MAX_OUTPUT: usize = 1 << 20;

/// Checks the presented host key against the pinned one and remembers what was presented.
pub(super) struct Checker {
    pub(super) pinned: Option<PublicKey>,
    pub(super) presented: Arc<Mutex<Option<PublicKey>>>,
}

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            // Host certificates would need a CA to be configured; none is.
            return Ok(false);
        };
        if let Ok(mut seen) = self.presented.lock() {
            *seen = Some(key.clone());
        }
        Ok(self
            .pinned
            .as_ref()
            .is_some_and(|p| p.key_data() == key.key_data()))
    }
}

/// An open connection to one host.
pub struct Session {
    pub(super) handle: client::Handle<Checker>,
    pub(super) endpoint: Endpoint,
    pub(super) sudo: bool,
    pub(super) command_timeout: Duration,
}

impl Session {
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Runs one script, feeding each chunk of output to `on_output` as it comes.
    ///
    /// # Errors
    /// [`SshError::CommandTimeout`] (the channel is closed), [`SshError::Protocol`].
    pub async fn run(
        &self,
        script: &Script,
        mut on_output: impl FnMut(&str),
    ) -> Result<Output, SshError> {
        let protocol = |source| SshError::Protocol {
            endpoint: self.endpoint.display(),
            source,
        };
        let mut channel = self.handle.channel_open_session().await.map_err(protocol)?;
        channel
            .exec(true, script.command_line(self.sudo))
            .await
            .map_err(protocol)?;
        let mut out = Output {
            exit: None,
            text: String::new(),
            truncated: false,
        };
        let timeout = script.timeout_override().unwrap_or(self.command_timeout);
        let collect = async {
            let mut pending: Vec<u8> = Vec::new();
            while let Some(msg) = channel.wait().await {
                match msg {
                    ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => {
                        pending.extend_from_slice(&data);
                        // Hand out whole UTF-8 characters only.
                        let valid = match std::str::from_utf8(&pending) {
                            Ok(_) => pending.len(),
                            Err(e) => e.valid_up_to(),
                        };
                        let chunk: Vec<u8> = pending.drain(..valid).collect();
                        let text = String::from_utf8_lossy(&chunk);
                        if out.text.len() < MAX_OUTPUT {
                            on_output(&text);
                            out.text.push_str(&text);
                        } else {
                            out.truncated = true;
                        }
                    }
                    ChannelMsg::ExitStatus { exit_status } => out.exit = Some(exit_status),
                    _ => {}
                }
            }
            if !pending.is_empty() {
                let text = String::from_utf8_lossy(&pending).into_owned();
                on_output(&text);
                out.text.push_str(&text);
            }
        };
        if tokio::time::timeout(timeout, collect).await.is_err() {
            let _ = channel.close().await;
            return Err(SshError::CommandTimeout {
                node: self.endpoint.node.to_string(),
                command: script.name().to_owned(),
                seconds: timeout.as_secs(),
            });
        }
        Ok(out)
    }

    /// Closes the connection.
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}
