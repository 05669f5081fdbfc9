//! Loading a known session again: [`Reload`]. The order of calls is
//! [`Machine`](crate::Machine)'s.

use std::sync::Arc;

use crate::config::Config;
use crate::error::{Failure, HandshakeError};
use crate::machines::handshake::loaded;
use crate::machines::op::{Cx, Op, Step};
use crate::request::{Reply, Request};
use crate::session::{Session, SessionId};
use crate::time::Now;

/// The reload's step: the id being loaded.
pub struct ReloadStep {
    sid: SessionId,
}

impl Step for ReloadStep {
    type Output = Session;
    type Error = HandshakeError;
    const NAME: &'static str = "Reload";

    fn on_reply(
        &mut self,
        cx: &mut Cx<'_>,
        reply: Reply,
    ) -> Option<Result<Session, HandshakeError>> {
        Some(loaded(cx, reply, || self.sid.clone()))
    }
}

/// Loads a known session again: session.socket.io's `getSession`, and how a
/// long-lived socket picks up what an HTTP route changed ([R9]). Same shape
/// and outcomes as [`Handshake`](super::Handshake) after its headers: one `Load`, then
/// `Ok(Session)`, `SessionNotFound`, `Expired`, or a [`Failure`]
/// (`InvalidSessionId`, `MalformedRecord`, `Store`, `Timeout`).
///
/// [R9]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r9
pub type Reload = Op<ReloadStep>;

impl Op<ReloadStep> {
    /// Reloads the session `sid`, starting at `now`.
    pub fn new(config: Arc<Config>, sid: &SessionId, now: Now) -> Self {
        let mut op = Op::with_step(config, now, ReloadStep { sid: sid.clone() });
        op.begin(|step, cx| {
            let Some(key) = cx.config.store_key(step.sid.expose().as_bytes()) else {
                return Some(Err(Failure::InvalidSessionId.into()));
            };
            cx.issue(|id| Request::Load { id, key });
            None
        });
        op
    }
}
