//! Live sessions: connections that follow their session as the store
//! changes it. What one handle keeps per session ([`hub`]), the task that
//! turns the store's events into refreshes and ends ([`events`]), and the
//! connection's copy ([`LiveSession`]).

pub(crate) mod events;
pub(crate) mod hub;
mod session;

pub use hub::SessionEnd;
pub use session::LiveSession;
