//! The shape every session machine shares, so that one driver loop can run
//! any of them against a store.

use std::time::SystemTime;

use crate::request::{Reply, Request, RequestId};

/// A sans-IO session machine: store requests out, replies and time in, one
/// outcome at the end.
///
/// Drive it by mutating, then draining outputs: after each `handle_*` call,
/// run every [`poll_request`](Machine::poll_request) against the store and
/// feed the answers back, then check [`poll_outcome`](Machine::poll_outcome);
/// sleep until [`poll_timeout`](Machine::poll_timeout) at the latest.
pub trait Machine {
    /// What the machine produces when it finishes.
    type Outcome;

    /// The next store request, if any.
    fn poll_request(&mut self) -> Option<Request>;

    /// Feeds the store's answer to request `id`. Answers to unknown or
    /// already answered ids are ignored.
    fn handle_reply(&mut self, id: RequestId, reply: Reply, now: SystemTime);

    /// When [`Machine::handle_timeout`] should next be called, if ever.
    fn poll_timeout(&self) -> Option<SystemTime>;

    /// Tells the machine the time; it fails closed once its deadline passed.
    /// Safe to call early or often.
    fn handle_timeout(&mut self, now: SystemTime);

    /// The outcome, once: `Some` the first time it is polled after the
    /// machine finished.
    fn poll_outcome(&mut self) -> Option<Self::Outcome>;
}

/// Implements [`Machine`] by forwarding to inherent methods of the same names.
macro_rules! forward_machine {
    ($ty:ty, $outcome:ty) => {
        impl $crate::machine::Machine for $ty {
            type Outcome = $outcome;
            fn poll_request(&mut self) -> Option<$crate::Request> {
                <$ty>::poll_request(self)
            }
            fn handle_reply(
                &mut self,
                id: $crate::RequestId,
                reply: $crate::Reply,
                now: std::time::SystemTime,
            ) {
                <$ty>::handle_reply(self, id, reply, now)
            }
            fn poll_timeout(&self) -> Option<std::time::SystemTime> {
                <$ty>::poll_timeout(self)
            }
            fn handle_timeout(&mut self, now: std::time::SystemTime) {
                <$ty>::handle_timeout(self, now)
            }
            fn poll_outcome(&mut self) -> Option<Self::Outcome> {
                <$ty>::poll_outcome(self)
            }
        }
    };
}
pub(crate) use forward_machine;
