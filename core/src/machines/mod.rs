//! The session machines, one per operation, all of one shape ([`Machine`],
//! implemented once by [`Op`]): store requests out, replies and time in, one
//! outcome at the end.
//!
//! | machine | operation | outcome |
//! |---|---|---|
//! | [`Handshake`] | the session of a request's headers | `Session` |
//! | [`Reload`] | a known session as stored now | `Session` |
//! | [`Create`] | a new session with a fresh id | [`Created`] |
//! | [`Save`] | one writer's changes, compare-and-set | `Session` |
//! | [`Commit`] | several writers' [`Edit`]s, one compare-and-set | `Vec<Session>` |
//! | [`Touch`] | a fresh expiry and TTL, data untouched | [`Touched`] |
//! | [`Destroy`] | logout | `()` |
//! | [`Regenerate`] | a new id, the old record destroyed | [`Created`] |

mod commit;
pub(crate) mod compare_and_set;
mod create;
mod destroy;
pub(crate) mod handshake;
pub(crate) mod op;
mod regenerate;
mod reload;
mod save;
mod touch;
pub(crate) mod write;

pub use commit::{Commit, CommitStep};
pub use compare_and_set::Edit;
pub use create::{Create, CreateStep, Created};
pub use destroy::{Destroy, DestroyStep};
pub use handshake::{Handshake, HandshakeStep};
pub use op::{Machine, Op, Step};
pub use regenerate::{Regenerate, RegenerateStep};
pub use reload::{Reload, ReloadStep};
pub use save::{Save, SaveStep};
pub use touch::{Touch, TouchStep, Touched};
pub use write::{SID_RANDOM_BYTES, sid_from_random, ttl_secs};
