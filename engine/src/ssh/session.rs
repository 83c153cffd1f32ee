//! An open SSH connection to one host: the host-key check of the handshake, and fixed scripts
//! run with their output streamed and bounded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::{PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, client};

use super::commands::Arg;
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
        on_output: impl FnMut(&str),
    ) -> Result<Output, SshError> {
        self.run_with(script, &[], on_output).await
    }

    /// Runs `script` with positional parameters; see [`Self::run`].
    ///
    /// # Errors
    /// As [`Self::run`].
    pub async fn run_with(
        &self,
        script: &Script,
        args: &[Arg],
        mut on_output: impl FnMut(&str),
    ) -> Result<Output, SshError> {
        let protocol = |source| SshError::Protocol {
            endpoint: self.endpoint.display(),
            source,
        };
        let mut channel = self.handle.channel_open_session().await.map_err(protocol)?;
        channel
            .exec(true, script.command_line_with(self.sudo, args))
            .await
            .map_err(protocol)?;
        let mut out = Output {
            exit: None,
            text: String::new(),
            truncated: false,
        };
        let timeout = script.timeout_override().unwrap_or(self.command_timeout);
        let collect = async {
            let mut decoder = Utf8Stream::default();
            while let Some(msg) = channel.wait().await {
                match msg {
                    ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => {
                        let text = decoder.push(&data);
                        keep(&mut out, &text, &mut on_output);
                    }
                    ChannelMsg::ExitStatus { exit_status } => out.exit = Some(exit_status),
                    _ => {}
                }
            }
            let rest = decoder.finish();
            keep(&mut out, &rest, &mut on_output);
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

/// Appends `text` to the output up to [`MAX_OUTPUT`] bytes (cut at a character boundary) and
/// hands what was kept to `on_output`; the rest is dropped and the output marked truncated.
/// Invisible formatting characters (bidi overrides, zero-width) are shown as their code.
fn keep(out: &mut Output, text: &str, on_output: &mut impl FnMut(&str)) {
    let shown;
    let text = if text.chars().any(crate::names::is_invisible_format) {
        shown = text
            .chars()
            .map(|c| {
                if crate::names::is_invisible_format(c) {
                    format!("<U+{:04X}>", u32::from(c))
                } else {
                    c.to_string()
                }
            })
            .collect::<String>();
        shown.as_str()
    } else {
        text
    };
    let room = MAX_OUTPUT.saturating_sub(out.text.len());
    let mut end = text.len().min(room);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if end < text.len() {
        out.truncated = true;
    }
    if end > 0 {
        on_output(&text[..end]);
        out.text.push_str(&text[..end]);
    }
}

/// Decodes a byte stream from a host as UTF-8 as it comes: invalid sequences become U+FFFD on
/// the spot (a stray byte no longer holds back what follows it), and only a character cut at
/// the end of a chunk (at most 3 bytes) waits for the next one.
#[derive(Debug, Default)]
struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut text = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    text.push_str(valid);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        // A character cut at the end: keep its bytes for the next chunk.
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        text
    }

    /// What is left at the end of the stream (a cut character becomes U+FFFD).
    fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stray_byte_is_replaced_and_what_follows_it_still_comes() {
        let mut d = Utf8Stream::default();
        assert_eq!(d.push(b"conf\xFF"), "conf\u{FFFD}");
        assert!(
            d.pending.is_empty(),
            "nothing held back after an invalid byte"
        );
        assert_eq!(d.push(b"list ok\n"), "list ok\n");
        assert_eq!(d.finish(), "");
    }

    #[test]
    fn a_character_cut_between_chunks_is_joined() {
        let mut d = Utf8Stream::default();
        let e = "é".as_bytes();
        assert_eq!(d.push(&[b'x', e[0]]), "x");
        assert_eq!(d.push(&[e[1], b'y']), "éy");
        assert_eq!(d.push(&[0xE2, 0x82]), "");
        assert_eq!(d.finish(), "\u{FFFD}");
    }

    #[test]
    fn output_is_bounded_on_bytes_at_a_character_boundary() {
        let mut out = Output {
            exit: None,
            text: "a".repeat(MAX_OUTPUT - 1),
            truncated: false,
        };
        let mut seen = String::new();
        keep(&mut out, "éé", &mut |t| seen.push_str(t));
        assert_eq!(
            out.text.len(),
            MAX_OUTPUT - 1,
            "a 2-byte character does not fit in 1"
        );
        assert!(out.truncated);
        assert!(seen.is_empty());
        keep(&mut out, "b", &mut |t| seen.push_str(t));
        assert_eq!(out.text.len(), MAX_OUTPUT);
        assert_eq!(seen, "b");
    }
}
