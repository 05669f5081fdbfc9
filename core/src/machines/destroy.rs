//! Ending a session (logout): [`Destroy`]. The order of calls is
//! [`Machine`](crate::Machine)'s.

use std::sync::Arc;

use crate::config::Config;
use crate::error::{Failure, WriteError};
use crate::machines::op::{Cx, Op, Step};
use crate::machines::write::destroyed;
use crate::request::{Reply, Request};
use crate::session::SessionId;
use crate::time::Now;

/// The destroy's step: nothing to remember.
pub struct DestroyStep;

impl Step for DestroyStep {
    type Output = ();
    type Error = WriteError;
    const NAME: &'static str = "Destroy";

    fn on_reply(&mut self, _: &mut Cx<'_>, reply: Reply) -> Option<Result<(), WriteError>> {
        Some(destroyed(reply))
    }
}

/// Destroys a session (logout): deletes its record (`DEL`). Every later
/// save of it fails with [`WriteError::Gone`] ([R24]). Drive it through
/// [`Machine`](crate::Machine).
///
/// ```text
/// Destroy::new(config, &sid, now)
///   poll_request() -> Request::Destroy { key }               DEL
///   handle_reply(id, Done, now)        -> Ok(())
/// ```
///
/// The outcome is `Ok(())` (also when there was no record) or a
/// [`Failure`] (`InvalidSessionId`, `Store`, `Timeout`) as a
/// [`WriteError`].
///
/// [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24
pub type Destroy = Op<DestroyStep>;

impl Op<DestroyStep> {
    /// Destroys the session `sid` at `now`.
    pub fn new(config: Arc<Config>, sid: &SessionId, now: Now) -> Self {
        let mut op = Op::with_step(config, now, DestroyStep);
        op.begin(|_, cx| {
            let Some(key) = cx.config.store_key(sid.expose().as_bytes()) else {
                return Some(Err(Failure::InvalidSessionId.into()));
            };
            cx.issue(|id| Request::Destroy { id, key });
            None
        });
        op
    }
}
