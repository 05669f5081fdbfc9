//! What operators see: a `tracing` span per session operation and per live
//! event, and (feature `metrics`) counters, gauges and a histogram through
//! the [`metrics`](https://docs.rs/metrics) facade.
//!
//! Nothing recorded here holds a session id, cookie value or secret
//! ([R16]): a span names its session by [`SessionId::tag`], a short digest.
//! The detail of a failure (its message and `source()` chain) is logged
//! once, by the operation that met it, at `warn` when the store is at fault
//! and at `debug` when the request or the session's own end is; replies to
//! clients carry only the reason code and a hint ([R35]).
//!
//! [R16]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r16
//! [R35]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r35

use std::error::Error;
use std::fmt;
use std::time::Instant;

use session_sockets_core::{Fault, HandshakeError, SessionId, WriteError};
use tracing::Span;
use tracing::field::Empty;

/// The metric names, all prefixed `session_sockets_`.
#[cfg(feature = "metrics")]
pub(crate) mod names {
    /// Counter: finished operations, by `op` and `outcome` (`ok` or the
    /// error's reason code).
    pub const OPERATIONS: &str = "session_sockets_operations_total";
    /// Counter: compare-and-set replies that found another writer's record,
    /// by `op`.
    pub const CONFLICTS: &str = "session_sockets_cas_conflicts_total";
    /// Counter: compare-and-set requests sent again after a conflict, by `op`.
    pub const RETRIES: &str = "session_sockets_cas_retries_total";
    /// Counter: store events received, by `kind` (`written`, `deleted`,
    /// `expired`, `lost`, `resumed`).
    pub const STORE_EVENTS: &str = "session_sockets_store_events_total";
    /// Counter: connections told that their session ended, by `reason`.
    pub const ENDS: &str = "session_sockets_session_ends_total";
    /// Gauge: sessions with at least one following connection.
    pub const FOLLOWED_SESSIONS: &str = "session_sockets_followed_sessions";
    /// Gauge: connections following their session.
    pub const FOLLOWED_SOCKETS: &str = "session_sockets_followed_sockets";
    /// Histogram: seconds from a store request to its answer, by `request`.
    pub const STORE_LATENCY: &str = "session_sockets_store_latency_seconds";
}

/// A session operation, as spans and metrics name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Handshake,
    Reload,
    Save,
    Update,
    /// One group commit of queued saves and updates.
    Commit,
    Touch,
    Destroy,
    Regenerate,
    Create,
    /// The check of an engine.io open, before socket.io sees it (R39).
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    Open,
}

impl Op {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Handshake => "handshake",
            Op::Reload => "reload",
            Op::Save => "save",
            Op::Update => "update",
            Op::Commit => "commit",
            Op::Touch => "touch",
            Op::Destroy => "destroy",
            Op::Regenerate => "regenerate",
            Op::Create => "create",
            Op::Open => "open",
        }
    }
}

/// What the driver counted while it ran one machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Store requests sent (random bytes are not a round trip).
    pub(crate) round_trips: u32,
    /// Compare-and-set requests sent.
    pub(crate) cas: u32,
    /// Compare-and-set replies that found another writer's record.
    pub(crate) conflicts: u32,
}

impl Stats {
    fn retries(self) -> u32 {
        self.cas.saturating_sub(1)
    }
}

/// An outcome's error, as observation needs it.
pub(crate) trait Failed: Error {
    fn reason(&self) -> &'static str;
    fn fault(&self) -> Fault;
}

impl Failed for HandshakeError {
    fn reason(&self) -> &'static str {
        HandshakeError::reason(self)
    }
    fn fault(&self) -> Fault {
        HandshakeError::fault(self)
    }
}

impl Failed for WriteError {
    fn reason(&self) -> &'static str {
        WriteError::reason(self)
    }
    fn fault(&self) -> Fault {
        WriteError::fault(self)
    }
}

/// An error and its `source()` chain on one line: `a: b: c`.
pub(crate) struct Chain<'a>(pub(crate) &'a dyn Error);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

/// One operation being observed: its span, and when it started.
pub(crate) struct Observation {
    span: Span,
    op: Op,
    started: Instant,
}

impl Observation {
    /// Starts observing `op` of session `id` (if known yet).
    pub(crate) fn start(op: Op, id: Option<&SessionId>) -> Self {
        let span = tracing::debug_span!(
            "session",
            op = op.name(),
            session = Empty,
            outcome = Empty,
            round_trips = Empty,
            conflicts = Empty,
            retries = Empty,
            duration_us = Empty,
        );
        if let Some(id) = id
            && !span.is_disabled()
        {
            span.record("session", id.tag());
        }
        Observation {
            span,
            op,
            started: Instant::now(),
        }
    }

    /// The span to run the operation in.
    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Names the session once it is known (a handshake learns it from the
    /// cookie).
    pub(crate) fn session(&self, id: &SessionId) {
        if !self.span.is_disabled() {
            self.span.record("session", id.tag());
        }
    }

    /// Records the outcome: span fields, metrics, and the failure's detail
    /// in the log, unless `log` is off (a queued write, whose commit
    /// logged it).
    pub(crate) fn finish<T, E: Failed>(self, outcome: &Result<T, E>, stats: Stats, log: bool) {
        let reason = match outcome {
            Ok(_) => "ok",
            Err(e) => e.reason(),
        };
        let span = &self.span;
        if !span.is_disabled() {
            span.record("outcome", reason);
            span.record("round_trips", stats.round_trips);
            span.record("conflicts", stats.conflicts);
            span.record("retries", stats.retries());
            let micros = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
            span.record("duration_us", micros);
        }
        if let (Err(e), true) = (outcome, log) {
            let op = self.op.name();
            match e.fault() {
                Fault::Store => tracing::warn!(
                    parent: span, op, reason, error = %Chain(e),
                    "session operation failed"
                ),
                Fault::Server => tracing::info!(
                    parent: span, op, reason, error = %Chain(e),
                    "session operation refused"
                ),
                _ => tracing::debug!(
                    parent: span, op, reason, error = %Chain(e),
                    "no session"
                ),
            }
        }
        metrics::operation(self.op, reason, stats);
    }
}

/// A live event (a change of a followed session, its reload, its end), as
/// a short span of its own.
pub(crate) fn live_event(event: &'static str, id: &SessionId) -> Span {
    let span = tracing::debug_span!("session_event", event, session = Empty);
    if !span.is_disabled() {
        span.record("session", id.tag());
    }
    span
}

/// The metrics, or nothing without the `metrics` feature.
#[cfg(feature = "metrics")]
pub(crate) mod metrics {
    use super::{Op, Stats, names};

    pub(crate) fn operation(op: Op, outcome: &'static str, stats: Stats) {
        let op = op.name();
        ::metrics::counter!(names::OPERATIONS, "op" => op, "outcome" => outcome).increment(1);
        if stats.conflicts > 0 {
            ::metrics::counter!(names::CONFLICTS, "op" => op).increment(stats.conflicts.into());
        }
        let retries = stats.retries();
        if retries > 0 {
            ::metrics::counter!(names::RETRIES, "op" => op).increment(retries.into());
        }
    }

    pub(crate) fn store_event(kind: &'static str) {
        ::metrics::counter!(names::STORE_EVENTS, "kind" => kind).increment(1);
    }

    pub(crate) fn ends(reason: &'static str, sockets: usize) {
        let n = u64::try_from(sockets).unwrap_or(u64::MAX);
        ::metrics::counter!(names::ENDS, "reason" => reason).increment(n);
    }

    /// A session's following connections went from `before` to `after`.
    pub(crate) fn followers(before: usize, after: usize) {
        if before == after {
            return;
        }
        // Counts of connections: far below f64's exact integers.
        #[allow(clippy::cast_precision_loss)]
        let delta = after as f64 - before as f64;
        ::metrics::gauge!(names::FOLLOWED_SOCKETS).increment(delta);
        match (before, after) {
            (0, _) => ::metrics::gauge!(names::FOLLOWED_SESSIONS).increment(1.0),
            (_, 0) => ::metrics::gauge!(names::FOLLOWED_SESSIONS).decrement(1.0),
            _ => {}
        }
    }

    pub(crate) fn latency(request: &'static str, seconds: f64) {
        ::metrics::histogram!(names::STORE_LATENCY, "request" => request).record(seconds);
    }
}

/// The metrics, or nothing without the `metrics` feature.
#[cfg(not(feature = "metrics"))]
pub(crate) mod metrics {
    use super::{Op, Stats};

    pub(crate) fn operation(_: Op, _: &'static str, _: Stats) {}
    pub(crate) fn store_event(_: &'static str) {}
    pub(crate) fn ends(_: &'static str, _: usize) {}
    pub(crate) fn followers(_: usize, _: usize) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_sockets_core::{Failure, StoreError};

    #[test]
    fn a_chain_says_every_cause_once_in_order() {
        let e = WriteError::Failed(Failure::Store(StoreError::with_source(
            "Redis at 127.0.0.1:6399 refused the connection",
            std::io::Error::other("connection refused"),
        )));
        let line = Chain(&e).to_string();
        assert!(line.contains("Redis at 127.0.0.1:6399"), "{line}");
        assert!(line.ends_with(": connection refused"), "{line}");
        assert_eq!(line.matches("connection refused").count(), 1, "{line}");
    }

    #[test]
    fn retries_are_the_compare_and_sets_after_the_first() {
        let s = |cas| Stats {
            round_trips: cas,
            cas,
            conflicts: cas.saturating_sub(1),
        };
        assert_eq!(s(0).retries(), 0);
        assert_eq!(s(1).retries(), 0);
        assert_eq!(s(3).retries(), 2);
    }
}
