//! The session id: a leaf that the codecs, the formats and the session use.

use std::sync::Arc;

/// A session id. `Debug` is redacted ([R16]); read it with [`SessionId::expose`]
/// only where it must leave the process (a store key, a signed cookie).
///
/// [R16]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r16
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(Arc<str>);

impl SessionId {
    /// Wraps an id.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        SessionId(id.into())
    }

    /// The id itself. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A short tag for logs and traces, to tell the operations of one
    /// session from another's without the id itself ([R16]): the first 8
    /// bytes of the id's SHA-256, base64url without padding (11
    /// characters).
    ///
    /// [R16]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r16
    pub fn tag(&self) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(self.0.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..8])
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}
