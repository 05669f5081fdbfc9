//! A new id for a session (login, privilege change): [`Regenerate`]. The
//! order of calls is [`Machine`](crate::Machine)'s.

use std::sync::Arc;

use serde_json::Map;

use crate::config::Config;
use crate::error::{Failure, WriteError};
use crate::machines::create::{Created, Creating};
use crate::machines::op::{Cx, Op, Step};
use crate::machines::write::destroyed;
use crate::request::{Reply, Request, StoreKey};
use crate::session::Session;
use crate::time::Now;

/// The regenerate's step: creating, then destroying the old record.
pub struct RegenerateStep {
    creating: Creating,
    old_key: Option<StoreKey>,
    /// The new session, while the old record's destroy is outstanding.
    created: Option<Created>,
}

impl Step for RegenerateStep {
    type Output = Created;
    type Error = WriteError;
    const NAME: &'static str = "Regenerate";

    fn on_reply(&mut self, cx: &mut Cx<'_>, reply: Reply) -> Option<Result<Created, WriteError>> {
        if let Some(created) = self.created.take() {
            return Some(destroyed(reply).map(|()| created));
        }
        match self.creating.on_reply(cx, reply)? {
            Err(e) => Some(Err(e)),
            Ok(created) => match self.old_key.take() {
                Some(key) => {
                    cx.issue(|id| Request::Destroy { id, key });
                    self.created = Some(created);
                    None
                }
                // `new` finishes at once without an old key.
                None => Some(Err(Failure::InvalidSessionId.into())),
            },
        }
    }
}

/// Gives a session a new id (on login or any privilege change, [R11]):
/// creates a new record, with the old data if `carry_over`, else empty, and
/// fresh cookie settings, exactly as [`Create`](super::Create); then destroys the old
/// record. Drive it through [`Machine`](crate::Machine).
///
/// ```text
/// Regenerate::new(config, session, carry_over, now)
///   Random, then Create, as Create does
///   poll_request()  -> Request::Destroy { old key }
///   handle_reply(id, Done, now)         -> Ok(Created { session, set_cookie })
/// ```
///
/// The outcome is `Ok(`[`Created`]`)` with the new session and the
/// `Set-Cookie` header to send, or a [`WriteError`]. If the new record was
/// stored but destroying the old one failed, the outcome is that error
/// (fail closed): the old id may still be valid, so treat the login as
/// failed.
///
/// [R11]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r11
pub type Regenerate = Op<RegenerateStep>;

impl Op<RegenerateStep> {
    /// Regenerates `session` at `now`.
    pub fn new(config: Arc<Config>, session: Session, carry_over: bool, now: Now) -> Self {
        let old_key = config.store_key(session.id().expose().as_bytes());
        let data = if carry_over {
            session.data().clone()
        } else {
            Map::new()
        };
        let creating = Creating::new(&config, data, now);
        let mut op = Op::with_step(
            config,
            now,
            RegenerateStep {
                creating,
                old_key,
                created: None,
            },
        );
        op.begin(|step, cx| {
            if step.old_key.is_none() {
                return Some(Err(Failure::InvalidSessionId.into()));
            }
            step.creating.ask_random(cx);
            None
        });
        op
    }
}
