//! The one shape of every session machine: the public [`Machine`] trait,
//! and [`Op`], its single implementation, which owns the I/O plumbing every
//! machine shares (request ids, the one outstanding request, its deadline,
//! the sticky outcome). What differs between machines is a crate-private
//! [`Step`]: what to do with a reply.

use std::sync::Arc;
use std::time::Instant;

use crate::config::Config;
use crate::error::Failure;
use crate::request::{Reply, Request, RequestId};
use crate::time::Now;

/// A sans-IO session machine: store requests out, replies and time in, one
/// outcome at the end. Every machine of this crate ([`Handshake`],
/// [`Reload`], [`Create`], [`Save`], [`Touch`], [`Destroy`],
/// [`Regenerate`]) is driven through this trait, so one loop runs them all.
///
/// # The polling order
///
/// After creating a machine and after every `handle_*` call (mutate), drain
/// its outputs, in this order:
///
/// 1. [`poll_request`](Machine::poll_request) until it returns `None`; run
///    each request against the store and feed the answer back with
///    [`handle_reply`](Machine::handle_reply), with the id the request
///    carries;
/// 2. [`poll_outcome`](Machine::poll_outcome): `Some` once, when the
///    machine has finished;
/// 3. otherwise wait for the store's answer, but not past
///    [`poll_timeout`](Machine::poll_timeout): when that time comes, call
///    [`handle_timeout`](Machine::handle_timeout) and drain again.
///
/// Machine-specific inputs (such as [`Handshake::handle_headers`]) are
/// mutations too: drain after them.
///
/// # Requests and replies
///
/// A machine has at most one request outstanding. Ids count up from 1
/// within a machine, so a reply to an earlier request, a duplicate reply, a
/// reply to an id never issued or to a request not yet polled is ignored.
///
/// # Time
///
/// The machine never reads a clock: the caller passes the time. Its
/// constructor takes a [`Now`], both clocks read once; every later call
/// takes a monotonic [`Instant`] only. Deadlines are instants: each
/// request's is the store deadline ([`Config::store_deadline`]) counted
/// from when it was issued. A reply that arrives at or after its deadline
/// finishes the machine with [`Failure::Timeout`] instead of being used,
/// and so does [`handle_timeout`](Machine::handle_timeout) once the
/// deadline has passed; calling it early or often is harmless. The wall
/// time of a step (for expiry dates and TTLs) is derived from its instant
/// ([`Now::wall_at`]), so stepping the wall clock forward or back while a
/// machine runs changes nothing about it.
///
/// A machine may also wait on purpose, with nothing outstanding (a save
/// backing off before it retries, [`Save`]): [`poll_timeout`](Machine::poll_timeout)
/// is then the instant it wants to go on at, and
/// [`handle_timeout`](Machine::handle_timeout) at or after it lets it issue
/// its next request. So the loop above needs no special case: drain, then
/// sleep until `poll_timeout` unless the store answers first.
///
/// # The outcome
///
/// A machine finishes exactly once. Its outcome is handed out by the first
/// [`poll_outcome`](Machine::poll_outcome) after it finished; from then on
/// it asks nothing, has no deadline and ignores every input.
///
/// [`Handshake`]: crate::machines::Handshake
/// [`Handshake::handle_headers`]: crate::machines::Handshake::handle_headers
/// [`Reload`]: crate::machines::Reload
/// [`Create`]: crate::machines::Create
/// [`Save`]: crate::machines::Save
/// [`Touch`]: crate::machines::Touch
/// [`Destroy`]: crate::machines::Destroy
/// [`Regenerate`]: crate::machines::Regenerate
pub trait Machine {
    /// What the machine produces when it finishes.
    type Outcome;

    /// The next store request, if any.
    fn poll_request(&mut self) -> Option<Request>;

    /// Feeds the store's answer to request `id`, at `now`.
    fn handle_reply(&mut self, id: RequestId, reply: Reply, now: Instant);

    /// When [`Machine::handle_timeout`] should be called at the latest, if
    /// ever (`None`: nothing is outstanding).
    fn poll_timeout(&self) -> Option<Instant>;

    /// Tells the machine the time; it fails closed once its deadline has
    /// passed.
    fn handle_timeout(&mut self, now: Instant);

    /// The outcome, once: `Some` the first time it is polled after the
    /// machine finished, `None` before and after.
    fn poll_outcome(&mut self) -> Option<Self::Outcome>;

    /// Whether the machine has finished (its outcome may already be taken).
    fn is_finished(&self) -> bool;
}

/// A machine borrowed is a machine: a driver that takes one by value can run
/// one the caller keeps, to read something of it afterwards.
impl<M: Machine + ?Sized> Machine for &mut M {
    type Outcome = M::Outcome;

    fn poll_request(&mut self) -> Option<Request> {
        (**self).poll_request()
    }
    fn handle_reply(&mut self, id: RequestId, reply: Reply, now: Instant) {
        (**self).handle_reply(id, reply, now);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        (**self).poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        (**self).handle_timeout(now);
    }
    fn poll_outcome(&mut self) -> Option<Self::Outcome> {
        (**self).poll_outcome()
    }
    fn is_finished(&self) -> bool {
        (**self).is_finished()
    }
}

/// What a machine decides on each reply: the part that differs between
/// machines. The plumbing around it (ids, deadlines, late replies, the
/// sticky outcome) is [`Op`]'s.
pub trait Step {
    /// The success value.
    type Output;
    /// The error, which every shared [`Failure`] converts into.
    type Error: From<Failure>;
    /// The machine's name, for `Debug`.
    const NAME: &'static str;

    /// Takes the answer to the outstanding request, which arrived in time.
    /// Either issues the next request through `cx` and returns `None`, or
    /// returns the outcome.
    fn on_reply(
        &mut self,
        cx: &mut Cx<'_>,
        reply: Reply,
    ) -> Option<Result<Self::Output, Self::Error>>;

    /// The instant the step asked to be woken at (`Cx::wake_at`) has
    /// come. Like [`Step::on_reply`], it issues the next request or returns
    /// the outcome.
    fn on_wake(&mut self, _cx: &mut Cx<'_>) -> Option<Result<Self::Output, Self::Error>> {
        None
    }
}

/// What a [`Step`] sees while it decides: the config, the time, and the
/// way to issue the next request.
pub struct Cx<'a> {
    pub(crate) config: &'a Config,
    /// The step's time: its instant and the wall time derived for it.
    pub(crate) now: Now,
    io: &'a mut Io,
}

impl Cx<'_> {
    /// Queues the request `build` makes with a fresh id; its deadline is the
    /// store deadline from now.
    pub(crate) fn issue(&mut self, build: impl FnOnce(RequestId) -> Request) {
        self.io.issue(self.config, self.now.instant, build);
    }

    /// Asks for [`Step::on_wake`] at `at`, with no request outstanding
    /// meanwhile (a backoff).
    pub(crate) fn wake_at(&mut self, at: Instant) {
        self.io.wake = Some(at);
    }
}

/// The one outstanding request: its id, whether it was handed out, and its
/// deadline.
struct Io {
    next: u64,
    unsent: Option<Request>,
    waiting: Option<(RequestId, Instant)>,
    /// When the step wants to go on, while nothing is outstanding.
    wake: Option<Instant>,
}

impl Io {
    fn issue(&mut self, config: &Config, now: Instant, build: impl FnOnce(RequestId) -> Request) {
        let id = RequestId(self.next);
        self.next += 1;
        // `build` caps the deadline; an unrepresentable one fails closed at
        // once instead of overflowing.
        let deadline = now.checked_add(config.store_deadline).unwrap_or(now);
        self.unsent = Some(build(id));
        self.waiting = Some((id, deadline));
    }
}

/// A session operation: the single implementation of [`Machine`], holding
/// the I/O plumbing every machine shares around the decisions of one
/// machine-specific step (the type parameter, which only this crate
/// defines). Use it through its aliases: [`Handshake`](crate::machines::Handshake),
/// [`Reload`](crate::machines::Reload), [`Create`](crate::machines::Create),
/// [`Save`](crate::machines::Save), [`Touch`](crate::machines::Touch),
/// [`Destroy`](crate::machines::Destroy), [`Regenerate`](crate::machines::Regenerate).
///
/// `Debug` shows the machine's name, its outstanding request id and whether
/// it finished; never ids, keys or session data.
#[must_use = "a session machine does nothing until its requests are run"]
pub struct Op<S: Step> {
    config: Arc<Config>,
    start: Now,
    io: Io,
    pub(crate) step: S,
    finished: bool,
    outcome: Option<Result<S::Output, S::Error>>,
}

impl<S: Step> std::fmt::Debug for Op<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(S::NAME)
            .field("waiting", &self.io.waiting.map(|(id, _)| id))
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl<S: Step> Op<S> {
    /// A machine around `step`, started at `now`, with nothing outstanding
    /// yet.
    pub(crate) fn with_step(config: Arc<Config>, now: Now, step: S) -> Self {
        Op {
            config,
            start: now,
            io: Io {
                next: 1,
                unsent: None,
                waiting: None,
                wake: None,
            },
            step,
            finished: false,
            outcome: None,
        }
    }

    /// Runs `f` on the step as of the machine's start (constructors and
    /// inputs without a time of their own), then finishes if it decided.
    pub(crate) fn begin(
        &mut self,
        f: impl FnOnce(&mut S, &mut Cx<'_>) -> Option<Result<S::Output, S::Error>>,
    ) {
        if self.finished {
            return;
        }
        let mut cx = Cx {
            config: &self.config,
            now: self.start,
            io: &mut self.io,
        };
        if let Some(outcome) = f(&mut self.step, &mut cx) {
            self.finish(outcome);
        }
    }

    /// Runs `f` on the step at `now` (an input with a time of its own):
    /// past the store deadline counted from the machine's start, finishes
    /// with a timeout instead.
    pub(crate) fn begin_at(
        &mut self,
        now: Instant,
        f: impl FnOnce(&mut S, &mut Cx<'_>) -> Option<Result<S::Output, S::Error>>,
    ) {
        if self.finished {
            return;
        }
        let late = self
            .start
            .instant
            .checked_add(self.config.store_deadline)
            .is_none_or(|deadline| now >= deadline);
        if late {
            return self.finish(Err(Failure::Timeout.into()));
        }
        let mut cx = Cx {
            config: &self.config,
            now: self.start.at(now),
            io: &mut self.io,
        };
        if let Some(outcome) = f(&mut self.step, &mut cx) {
            self.finish(outcome);
        }
    }

    /// Finishes with `outcome` and drops the outstanding request, unless
    /// already finished: the first outcome is the one that counts.
    fn finish(&mut self, outcome: Result<S::Output, S::Error>) {
        if !self.finished {
            self.finished = true;
            self.io.unsent = None;
            self.io.waiting = None;
            self.io.wake = None;
            self.outcome = Some(outcome);
        }
    }
}

impl<S: Step> Machine for Op<S> {
    type Outcome = Result<S::Output, S::Error>;

    fn poll_request(&mut self) -> Option<Request> {
        self.io.unsent.take()
    }

    fn handle_reply(&mut self, id: RequestId, reply: Reply, now: Instant) {
        let Some((waiting, deadline)) = self.io.waiting else {
            return;
        };
        if waiting != id || self.io.unsent.is_some() {
            return;
        }
        self.io.waiting = None;
        if now >= deadline {
            return self.finish(Err(Failure::Timeout.into()));
        }
        let mut cx = Cx {
            config: &self.config,
            now: self.start.at(now),
            io: &mut self.io,
        };
        if let Some(outcome) = self.step.on_reply(&mut cx, reply) {
            self.finish(outcome);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self.io.waiting {
            Some((_, deadline)) => Some(deadline),
            None => self.io.wake,
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if let Some((_, deadline)) = self.io.waiting {
            if now >= deadline {
                self.finish(Err(Failure::Timeout.into()));
            }
            return;
        }
        if self.io.wake.is_some_and(|at| now >= at) {
            self.io.wake = None;
            let mut cx = Cx {
                config: &self.config,
                now: self.start.at(now),
                io: &mut self.io,
            };
            if let Some(outcome) = self.step.on_wake(&mut cx) {
                self.finish(outcome);
            }
        }
    }

    fn poll_outcome(&mut self) -> Option<Self::Outcome> {
        self.outcome.take()
    }

    fn is_finished(&self) -> bool {
        self.finished
    }
}
