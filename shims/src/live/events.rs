//! The event task and what store events mean for followed sessions: the
//! store's reports (another writer's change, a delete, an expiry, a lost
//! stream) refresh or end the sessions the connections of this handle
//! follow ([R32]).
//!
//! [R32]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r32

use std::sync::Arc;

use session_sockets_core::machines::Handshake;
use session_sockets_core::{Config, HandshakeError, Request, Session, SessionId, WriteError};
use tracing::Instrument as _;

use crate::handle::{Observed, OnRequest, SessionSockets, stalled_failure};
use crate::live::hub::{Follow, Follower, Hub, SessionEnd, Watch};
use crate::observe::{self, Op, Stats};
use crate::runtime::{Runtime, start};
use crate::store::{Store, StoreEvent};

impl<R: Runtime> SessionSockets<R> {
    // ---- live sessions ----------------------------------------------------

    /// The session of a connection, as [`session`](Self::session) finds
    /// it, with a watch on it taken before it was loaded (so that a session
    /// ending during the handshake is noticed, [R32]); `None` when the
    /// handshake failed before loading.
    ///
    /// [R32]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r32
    pub(crate) async fn watched_session(
        &self,
        headers: &http::HeaderMap,
    ) -> (Result<Session, HandshakeError>, Option<Watch>) {
        let mut watch = None;
        let outcome = self
            .observed(Op::Handshake, None, false, async {
                let now = start(&*self.shared.runtime);
                let mut hs = Handshake::new(Arc::clone(&self.shared.config), now);
                hs.handle_header_map(headers, now.instant);
                let mut watched = Observed {
                    machine: hs,
                    hook: WatchOnLoad {
                        sockets: self,
                        watch: None,
                    },
                };
                let mut stats = Stats::default();
                let outcome = match self.run_counted(&mut watched, &mut stats).await {
                    Ok(outcome) => outcome,
                    Err(stalled) => Err(HandshakeError::Failed(stalled_failure(stalled))),
                };
                watch = watched.hook.watch;
                (outcome, stats)
            })
            .await;
        (outcome, watch)
    }

    /// Makes `follower` follow its session from `watch` on: refreshed when
    /// another writer changes it, ended when it ends. `false` if the session
    /// ended while the handshake loaded it (refuse the connection).
    pub(crate) fn follow(
        &self,
        watch: Watch,
        follower: std::sync::Weak<dyn Follower>,
        loaded: &Arc<Session>,
    ) -> bool {
        let id = match watch.follow(follower, loaded) {
            Follow::Ended => return false,
            Follow::Following => None,
            Follow::Differs(id) => Some(id),
        };
        self.start_events();
        if let Some(id) = id {
            self.reload_followed(id);
        }
        true
    }

    /// Tells the followers of `id` that it ended.
    pub(crate) fn end_followers(&self, id: &SessionId, why: SessionEnd) {
        let followers = self.shared.hub.ended(id);
        if followers.is_empty() {
            return;
        }
        let _span = observe::live_event("end", id).entered();
        tracing::debug!(
            reason = why.reason(),
            sockets = followers.len(),
            "session ended"
        );
        observe::metrics::ends(why.reason(), followers.len());
        for f in followers {
            f.end(why);
        }
    }

    /// Starts the task that follows the store's events, once (and never
    /// once the handle stops).
    fn start_events(&self) {
        if !self.shared.hub.start_events() {
            return;
        }
        let live = Live {
            config: Arc::clone(&self.shared.config),
            store: Arc::clone(&self.shared.store),
            runtime: Arc::clone(&self.shared.runtime),
            hub: Arc::downgrade(&self.shared.hub),
            shared: Arc::downgrade(&self.shared),
        };
        self.shared.runtime.spawn(Box::pin(live.run()));
    }
}

/// A handshake's hook: registers a watch on its session just before the
/// load request goes out.
struct WatchOnLoad<'a, R> {
    sockets: &'a SessionSockets<R>,
    watch: Option<Watch>,
}

impl<R> OnRequest for WatchOnLoad<'_, R> {
    fn on_request(&mut self, request: &Request) {
        if let Request::Load { key, .. } = request
            && self.watch.is_none()
            && let Some(id) = session_sockets_core::event::session_of_key(
                &self.sockets.shared.config,
                key.as_bytes(),
            )
        {
            self.watch = Some(self.sockets.hub().watch(id));
        }
    }
}

/// Tells the hub the event task ended, however it ends.
struct EventsRunning(std::sync::Weak<Hub>);

impl Drop for EventsRunning {
    fn drop(&mut self) {
        if let Some(hub) = self.0.upgrade() {
            hub.events_ended();
        }
    }
}

/// How often the event task looks at keep-alive, expiry and a lost event
/// stream.
const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// The event task's view of a handle: everything but a strong hold on the
/// handle, so that the task ends once every handle is dropped.
struct Live<R> {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    runtime: Arc<R>,
    hub: std::sync::Weak<Hub>,
    shared: std::sync::Weak<crate::handle::Handle<R>>,
}

impl<R: Runtime> Live<R> {
    /// A handle again, while the hub lives.
    fn sockets(&self) -> Option<SessionSockets<R>> {
        Some(SessionSockets {
            shared: self.shared.upgrade()?,
        })
    }

    /// Follows the store's events until the hub is gone: subscribes, then
    /// handles each event, and once a second refreshes TTLs (keep-alive),
    /// ends sessions whose cookie expired and nudges a lost event stream.
    async fn run(self) {
        let sink_hub = self.hub.clone();
        let sink: crate::store::EventSink = Arc::new(move |event| {
            if let Some(hub) = sink_hub.upgrade() {
                hub.push_event(event);
            }
        });
        let _running = EventsRunning(self.hub.clone());
        let mut _subscription = None;
        let mut subscribed = false;
        let mut lost = false;
        loop {
            if self.hub.upgrade().is_none_or(|hub| hub.events_stopped()) {
                // Dropping the subscription ends it.
                return;
            }
            if !subscribed {
                match self
                    .store
                    .subscribe(self.config.key_prefix().as_bytes(), Arc::clone(&sink))
                    .await
                {
                    Ok(sub) => {
                        _subscription = sub;
                        subscribed = true;
                    }
                    Err(e) => tracing::warn!(
                        error = %observe::Chain(&e),
                        "cannot follow the store's session events; retrying"
                    ),
                }
            }
            let Some(hub) = self.hub.upgrade() else {
                return;
            };
            let next = futures_lite::future::or(
                async { Some(std::future::poll_fn(|cx| hub.poll_event(cx)).await) },
                async {
                    self.runtime.sleep(TICK).await;
                    None
                },
            )
            .await;
            drop(hub);
            let Some(sockets) = self.sockets() else {
                return;
            };
            if let Some(event) = &next {
                observe::metrics::store_event(match event {
                    StoreEvent::Key(k) => match k.change {
                        session_sockets_core::event::KeyChange::Written(_) => "written",
                        session_sockets_core::event::KeyChange::Deleted => "deleted",
                        session_sockets_core::event::KeyChange::Expired => "expired",
                    },
                    StoreEvent::Lost => "lost",
                    StoreEvent::Resumed => "resumed",
                });
            }
            match next {
                Some(StoreEvent::Key(event)) => sockets.on_key_event(&event),
                Some(StoreEvent::Lost) => {
                    tracing::warn!("the store's session events were lost; re-validating once back");
                    lost = true;
                }
                Some(StoreEvent::Resumed) => lost = !sockets.resume().await,
                None => {
                    if lost {
                        // Redis reconnects (and re-subscribes, which sends
                        // `Resumed`) when a command needs it.
                        let _ = sockets.store().events_resumed().await;
                    }
                    sockets.keep_alive();
                    sockets.check_expiry();
                }
            }
        }
    }
}

impl<R: Runtime> SessionSockets<R> {
    /// A store event about a key: what it means for a followed session.
    fn on_key_event(&self, event: &session_sockets_core::event::KeyEvent) {
        use session_sockets_core::event::{SessionChange, session_event};
        let Some(ev) = session_event(&self.shared.config, event) else {
            return;
        };
        if !self.shared.hub.follows(&ev.id) {
            return;
        }
        let kind = match ev.change {
            SessionChange::Destroyed => "destroyed",
            SessionChange::Expired => "expired",
            SessionChange::Changed(_) => "changed",
        };
        let _span = observe::live_event(kind, &ev.id).entered();
        match ev.change {
            SessionChange::Destroyed => self.end_followers(&ev.id, SessionEnd::Destroyed),
            SessionChange::Expired => self.end_followers(&ev.id, SessionEnd::Expired),
            SessionChange::Changed(Some(bytes)) if self.shared.hub.is_latest(&ev.id, &bytes) => {
                // This process's own write: its sockets know it already.
            }
            SessionChange::Changed(_) => self.reload_followed(ev.id),
        }
    }

    /// Reloads a followed session (coalesced: one reload per burst of
    /// changes) and refreshes or ends its followers.
    fn reload_followed(&self, id: SessionId) {
        if !self.shared.hub.want_reload(&id) {
            return;
        }
        let this = self.clone();
        let span = observe::live_event("reload", &id);
        self.shared.runtime.spawn(Box::pin(
            async move {
                loop {
                    match this.reload(&id).await {
                        Ok(fresh) => {
                            let (followers, fresh) = this.hub().reloaded(&id, fresh);
                            for f in followers {
                                f.refresh(&fresh);
                            }
                        }
                        Err(HandshakeError::SessionNotFound) => {
                            this.end_followers(&id, SessionEnd::Destroyed);
                        }
                        Err(HandshakeError::Expired) => {
                            this.end_followers(&id, SessionEnd::Expired)
                        }
                        // The store is in trouble: keep the copies; a later
                        // event or re-validation catches up.
                        Err(_) => {}
                    }
                    if !this.hub().reload_done(&id) {
                        break;
                    }
                }
            }
            .instrument(span),
        ));
    }

    /// The event stream is back: re-arm it, then re-validate every followed
    /// session once (events in the gap were lost). `false` if it could not
    /// be re-armed (tried again on the next tick).
    async fn resume(&self) -> bool {
        if let Err(e) = self.shared.store.events_resumed().await {
            tracing::warn!(
                error = %observe::Chain(&e),
                "the store's session events are not back yet"
            );
            return false;
        }
        tracing::info!("the store's session events are back; re-validating followed sessions");
        for id in self.shared.hub.followed() {
            self.reload_followed(id);
        }
        true
    }

    /// Touches each followed session at most once per keep-alive interval.
    fn keep_alive(&self) {
        let Some(interval) = self.shared.config.keep_alive() else {
            return;
        };
        let Some(before) = std::time::Instant::now().checked_sub(interval) else {
            return;
        };
        for session in self.shared.hub.due_for_touch(before) {
            let this = self.clone();
            self.shared.runtime.spawn(Box::pin(async move {
                let id = session.id().clone();
                let before = session.clone();
                match this.touch(session).await {
                    Ok(t) if t.session.rests_on_same(&before) => this.hub().touched(&t.session),
                    // The touch wrote a new record (tower-sessions keeps the
                    // expiry date in it): the followers move onto it.
                    Ok(t) => {
                        let (followers, fresh) = this.hub().reloaded(&id, t.session);
                        for f in followers {
                            f.refresh(&fresh);
                        }
                    }
                    Err(WriteError::Gone) => this.end_followers(&id, SessionEnd::Destroyed),
                    Err(WriteError::Expired) => this.end_followers(&id, SessionEnd::Expired),
                    Err(_) => {}
                }
            }));
        }
    }

    /// Ends followed sessions whose record says they have expired ([R13]:
    /// express-session's `cookie.expires`, tower-sessions' expiry date;
    /// the core decides, as for loads).
    ///
    /// [R13]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r13
    fn check_expiry(&self) {
        if !self.shared.config.records_can_expire() {
            // Nothing to find: the store's TTL alone ends them.
            return;
        }
        let now = self.shared.runtime.wall();
        let now_ms = session_sockets_core::time::millis(now);
        for s in self.shared.hub.expired(now_ms) {
            if self.shared.config.has_expired(&s, now) {
                self.end_followers(s.id(), SessionEnd::Expired);
            }
        }
    }
}
