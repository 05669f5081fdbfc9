//! What one [`SessionSockets`](crate::SessionSockets) handle (and its
//! clones) keeps per session, in process:
//!
//! - **the write queue**: every save and update of a session, from HTTP
//!   requests and sockets alike, queues here; one task at a time writes the
//!   queued edits with one compare-and-set
//!   ([`Commit`](session_sockets_core::machines::Commit), a group commit), so writers
//!   in one process never conflict with each other and each caller still
//!   gets its own outcome;
//! - **the followers**: the sockets connected with the session, told when
//!   another writer changed it (their copy is refreshed) and when it ended
//!   (they are disconnected), from the store's events ([R32]);
//! - **the watchers**: handshakes that have resolved the session id and are
//!   loading it, so that a session ending meanwhile is noticed.
//!
//! [R32]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r32

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Waker;
use std::time::Instant;

use futures_channel::oneshot;
use session_sockets_core::machines::Edit;
use session_sockets_core::{Session, SessionId, WriteError};

use crate::observe::metrics;
use crate::store::StoreEvent;

/// An update closure, as queued.
pub(crate) type Update = Box<dyn FnMut(&mut Session) + Send>;

/// One caller's queued write, and where its outcome goes.
pub(crate) struct Queued {
    pub(crate) session: Session,
    pub(crate) update: Option<Update>,
    pub(crate) reply: oneshot::Sender<Result<Session, WriteError>>,
}

impl Queued {
    /// The core's edit for this write.
    pub(crate) fn edit(&mut self) -> Edit {
        match self.update.take() {
            Some(update) => Edit::update(&self.session, update),
            None => Edit::save(&self.session),
        }
    }
}

/// Why a followed session ended, as its sockets are told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEnd {
    /// Destroyed: a logout (on any server, or in Express), or deleted from
    /// the store.
    Destroyed,
    /// Its time ran out (the store's TTL, or the cookie's expiry).
    Expired,
}

impl SessionEnd {
    /// A stable code: `destroyed` or `expired`.
    pub fn reason(self) -> &'static str {
        match self {
            SessionEnd::Destroyed => "destroyed",
            SessionEnd::Expired => "expired",
        }
    }
}

impl std::fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SessionEnd::Destroyed => "the session ended (signed out, or deleted): sign in again",
            SessionEnd::Expired => "the session expired: sign in again",
        })
    }
}

/// A socket's copy of a session that follows the store.
pub(crate) trait Follower: Send + Sync {
    /// Another writer changed the session: `fresh` is it as stored now
    /// (one copy for every follower: a follower with no change of its own
    /// keeps `fresh` itself rather than a copy).
    fn refresh(&self, fresh: &Arc<Session>);
    /// Takes `shared` in place of `loaded`, its copy from the handshake,
    /// if it still holds that one: both rest on the same record, so the
    /// sockets of a session share one copy until one of them changes it.
    fn share(&self, loaded: &Arc<Session>, shared: &Arc<Session>);
    /// The session ended: disconnect.
    fn end(&self, why: SessionEnd);
}

/// Everything the hub keeps, by session.
#[derive(Default)]
pub(crate) struct Hub {
    entries: Mutex<Entries>,
    events: Mutex<Events>,
}

/// The sessions, and the two orders the event task's once-a-second look
/// walks, so that it visits only the sessions that are due rather than
/// every followed one.
#[derive(Default)]
struct Entries {
    map: HashMap<SessionId, Entry>,
    /// Followed sessions in the order their keep-alive touch comes due:
    /// `(when it was last touched, id)`, oldest first. An item is current
    /// while it names the entry's `touched` exactly; others are skipped
    /// (the entry was touched again, or unfollowed, meanwhile).
    touch: VecDeque<(Instant, SessionId)>,
    /// Followed sessions whose latest copy has a cookie expiry, by that
    /// expiry (milliseconds since the epoch): exactly one item per such
    /// session, kept in step by [`Entries::reindex`].
    expiry: BTreeSet<(i64, ById)>,
}

/// A session id ordered by its bytes, for [`Entries::expiry`].
#[derive(Clone, PartialEq, Eq)]
struct ById(SessionId);

impl Ord for ById {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.expose().cmp(other.0.expose())
    }
}

impl PartialOrd for ById {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Entries {
    /// The expiry an entry is indexed under: followed, with a latest copy
    /// whose record says when it ends.
    fn expiry_of(entry: &Entry) -> Option<i64> {
        if entry.followers.is_empty() {
            return None;
        }
        entry.latest.as_ref()?.meta().expires_ms()
    }

    /// Moves `id`'s expiry item from `before` to `after`.
    fn reindex(&mut self, id: &SessionId, before: Option<i64>, after: Option<i64>) {
        if before == after {
            return;
        }
        if let Some(ms) = before {
            self.expiry.remove(&(ms, ById(id.clone())));
        }
        if let Some(ms) = after {
            // The map's own key, so that the index shares its allocation.
            let key = self.map.get_key_value(id).map_or(id, |(k, _)| k);
            self.expiry.insert((ms, ById(key.clone())));
        }
    }

    /// Runs `f` on `id`'s entry (if any) and keeps the expiry index in step
    /// with what it changed.
    fn change<T>(&mut self, id: &SessionId, f: impl FnOnce(&mut Entry) -> T) -> Option<T> {
        let entry = self.map.get_mut(id)?;
        let before = Self::expiry_of(entry);
        let out = f(entry);
        let after = Self::expiry_of(entry);
        self.reindex(id, before, after);
        Some(out)
    }

    /// Marks `id` touched now and queues its next keep-alive.
    fn touched_now(&mut self, id: &SessionId) {
        let now = Instant::now();
        let Some(entry) = self.map.get_mut(id) else {
            return;
        };
        entry.touched = Some(now);
        // The map's own key, so that the queue shares its allocation.
        if let Some((key, _)) = self.map.get_key_value(id) {
            let key = key.clone();
            self.touch.push_back((now, key));
        }
        // Stale items (their entry touched again, or gone) leave when their
        // turn comes at the front; with keep-alive off, or a long interval,
        // nothing takes them: once they outnumber the entries, drop them
        // (amortized O(1) a push, the queue at most twice the entries).
        if self.touch.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.touch
                .retain(|(at, id)| map.get(id).is_some_and(|e| e.touched == Some(*at)));
        }
    }
}

/// Store events waiting for the hub's event task.
#[derive(Default)]
pub(crate) struct Events {
    queue: VecDeque<StoreEvent>,
    waker: Option<Waker>,
    /// The event task was started.
    started: bool,
    /// The event task is running.
    running: bool,
    /// The handle stops: the event task must end.
    stopped: bool,
}

/// One session's state. Kept small: a hub holds one per session with a
/// connected socket, for as long as it is connected; what only writes and
/// reloads use lives in [`Busy`], allocated by the first of them.
#[derive(Default)]
struct Entry {
    /// The session as this process last stored or loaded it: the next
    /// batch starts from it, touches refresh it, and a reported write with
    /// exactly its bytes is this process's own. Kept as stored (see
    /// [`view`]) and shared with the followers that have no change of
    /// their own.
    latest: Option<Arc<Session>>,
    followers: Followers,
    /// When the session was last touched (or loaded) here.
    touched: Option<Instant>,
    /// Handshakes loading the session right now.
    watchers: u32,
    /// How many times the session was seen to end (destroyed or expired),
    /// wrapping: a handshake that started before an end refuses its
    /// session (it compares the count it saw with the count now).
    ends: u32,
    busy: Option<Box<Busy>>,
}

/// A session's followers, by the address of each (see [`address`]). Most
/// sessions have one socket: it is kept inline; a session with more has
/// them in a map, so that one leaving is found at once rather than by a
/// walk over the others (n sockets of one session leaving would cost n²).
#[derive(Default)]
enum Followers {
    #[default]
    None,
    One(Weak<dyn Follower>),
    Many(Box<FollowerMap>),
}

/// The followers of a session with more than one, by address.
type FollowerMap = HashMap<usize, Weak<dyn Follower>, BuildHasherDefault<DefaultHasher>>;

/// A follower's address: what its connection's state leaves the hub with
/// ([`Hub::unfollow`]). Unique while the hub holds its `Weak` (the
/// allocation lives as long as a `Weak` to it does).
pub(crate) fn address(follower: &Weak<dyn Follower>) -> usize {
    Weak::as_ptr(follower).cast::<()>().addr()
}

impl Followers {
    fn iter(&self) -> impl Iterator<Item = &Weak<dyn Follower>> {
        let (one, many) = match self {
            Followers::None => (None, None),
            Followers::One(f) => (Some(f), None),
            Followers::Many(m) => (None, Some(m.values())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&mut self, follower: Weak<dyn Follower>) {
        metrics::followers(self.len(), self.len() + 1);
        match std::mem::take(self) {
            Followers::None => *self = Followers::One(follower),
            Followers::One(first) => {
                let mut map = FollowerMap::default();
                map.insert(address(&first), first);
                map.insert(address(&follower), follower);
                *self = Followers::Many(Box::new(map));
            }
            Followers::Many(mut map) => {
                map.insert(address(&follower), follower);
                *self = Followers::Many(map);
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Followers::None => 0,
            Followers::One(_) => 1,
            Followers::Many(m) => m.len(),
        }
    }

    /// Drops the follower at `address` (its connection closed).
    fn remove(&mut self, at: usize) {
        let before = self.len();
        match self {
            Followers::One(f) if address(f) == at => *self = Followers::None,
            Followers::Many(m) => {
                m.remove(&at);
                if m.is_empty() {
                    *self = Followers::None;
                }
            }
            _ => {}
        }
        metrics::followers(before, self.len());
    }

    /// Drops the followers that are gone (their connection closed).
    fn prune(&mut self) {
        let before = self.len();
        match self {
            Followers::One(f) if f.strong_count() == 0 => *self = Followers::None,
            Followers::Many(m) => {
                m.retain(|_, f| f.strong_count() > 0);
                if m.is_empty() {
                    *self = Followers::None;
                }
            }
            _ => {}
        }
        metrics::followers(before, self.len());
    }

    fn clear(&mut self) {
        metrics::followers(self.len(), 0);
        *self = Followers::None;
    }
}

/// The part of an [`Entry`] that writes and reloads use.
#[derive(Default)]
struct Busy {
    queue: Vec<Queued>,
    /// A commit task is running for this session.
    committing: bool,
    /// A reload is running; `again`: another change arrived meanwhile.
    reloading: bool,
    again: bool,
    /// The records this process's last compare-and-sets wrote (sent, maybe
    /// not yet answered): a reported write of one of them is its own.
    written: VecDeque<session_sockets_core::Bytes>,
}

/// How many of a session's own recent writes are remembered.
const WRITTEN: usize = 4;

/// `session` as the hub keeps it: as stored when it has no change of its
/// own (the save it came from forgotten, spare capacity released), so
/// that followers can share it.
fn view(session: Session) -> Arc<Session> {
    Arc::new(session.stored_copy().unwrap_or(session))
}

/// Whether a follower holding `copy` may hold `shared` instead: both rest
/// on the same record with the same cookie, and neither has a change of
/// its own.
pub(crate) fn interchangeable(copy: &Session, shared: &Session) -> bool {
    copy.is_as_stored()
        && shared.is_as_stored()
        && copy.rests_on_same(shared)
        && copy.cookie() == shared.cookie()
}

/// What became of a handshake's follow.
pub(crate) enum Follow {
    /// The session ended while the handshake loaded it.
    Ended,
    /// Following.
    Following,
    /// Following, but the hub holds another record than the one the
    /// handshake loaded, and which is newer is unknown: reload it once so
    /// that every follower ends on the record as stored now.
    Differs(SessionId),
}

impl Entry {
    fn idle(&self) -> bool {
        self.followers.is_empty()
            && self.watchers == 0
            && self
                .busy
                .as_ref()
                .is_none_or(|b| b.queue.is_empty() && !b.committing && !b.reloading)
    }

    fn busy(&mut self) -> &mut Busy {
        self.busy.get_or_insert_with(Box::default)
    }

    fn has_live(&self) -> bool {
        self.followers.iter().any(|f| f.strong_count() > 0)
    }

    /// The followers still alive (dropped sockets are pruned).
    fn live(&mut self) -> Vec<Arc<dyn Follower>> {
        self.followers.prune();
        self.followers.iter().filter_map(Weak::upgrade).collect()
    }
}

/// A handshake's registration, taken before it loads the session: whether
/// the session ended while it loaded.
pub(crate) struct Watch {
    hub: Arc<Hub>,
    id: SessionId,
    ends: u32,
    done: bool,
}

impl Watch {
    /// Makes `follower` follow the session, unless it ended since the watch
    /// began; `loaded` is the session as the handshake loaded it, and the
    /// follower's copy. When the hub already keeps that very record, the
    /// follower shares the hub's copy instead (one copy per session, not
    /// per socket).
    pub(crate) fn follow(mut self, follower: Weak<dyn Follower>, loaded: &Arc<Session>) -> Follow {
        self.done = true;
        let mut entries = self.hub.lock();
        let entry = entries.map.entry(self.id.clone()).or_default();
        entry.watchers = entry.watchers.saturating_sub(1);
        if entry.ends != self.ends {
            if entry.idle() {
                entries.map.remove(&self.id);
            }
            return Follow::Ended;
        }
        let before = Entries::expiry_of(entry);
        let followed = match &entry.latest {
            Some(latest) if interchangeable(loaded, latest) => {
                // Under the hub's lock, so no refresh can come in between.
                if let Some(f) = follower.upgrade() {
                    f.share(loaded, latest);
                }
                Follow::Following
            }
            Some(latest) if latest.rests_on_same(loaded) => Follow::Following,
            Some(_) => Follow::Differs(self.id.clone()),
            None => {
                entry.latest = Some(Arc::clone(loaded));
                Follow::Following
            }
        };
        // No live follower before this one: its keep-alive is queued anew
        // (a follower whose connection is closing may still be listed; the
        // once-a-second look may have dropped the session's item for it).
        let first = !entry.has_live();
        entry.followers.push(follower);
        let after = Entries::expiry_of(entry);
        // Keyed by the session's own id from now on, not by the copy the
        // watch made from the store key: one allocation of the id per
        // followed session, not two. (Both name the same id; a key under
        // another name would hide the entry from the store's events.)
        if first
            && *loaded.id() == self.id
            && let Some(entry) = entries.map.remove(&self.id)
        {
            entries.map.insert(loaded.id().clone(), entry);
        }
        if first {
            // Its keep-alive comes due one interval from now.
            entries.touched_now(&self.id);
        }
        entries.reindex(&self.id, before, after);
        followed
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut entries = self.hub.lock();
        if let Some(entry) = entries.map.get_mut(&self.id) {
            entry.watchers = entry.watchers.saturating_sub(1);
            if entry.idle() {
                entries.map.remove(&self.id);
            }
        }
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Entries are keyed by session id: counts only (R16).
        f.debug_struct("Hub")
            .field("sessions", &self.lock().map.len())
            .finish()
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        // Every mutation below is a few map and vector operations that do
        // not panic, so a poisoned lock still holds consistent state.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn events(&self) -> MutexGuard<'_, Events> {
        // Pushes and pops of whole events: consistent after a panic.
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    // ---- the write queue --------------------------------------------------

    /// Queues `write`; `true` if the caller must start the session's commit
    /// task (none is running).
    pub(crate) fn enqueue(&self, write: Queued) -> bool {
        let mut entries = self.lock();
        let entry = entries.map.entry(write.session.id().clone()).or_default();
        let busy = entry.busy();
        busy.queue.push(write);
        !std::mem::replace(&mut busy.committing, true)
    }

    /// The next batch of `id`'s writes, with the session to start it from;
    /// `None` when the queue is empty, which ends the commit task.
    pub(crate) fn next_batch(&self, id: &SessionId) -> Option<(Vec<Queued>, Option<Session>)> {
        let mut entries = self.lock();
        let entry = entries.map.get_mut(id)?;
        let busy = entry.busy();
        if busy.queue.is_empty() {
            busy.committing = false;
            if entry.idle() {
                entries.map.remove(id);
            }
            return None;
        }
        let batch = std::mem::take(&mut busy.queue);
        Some((batch, entry.latest.as_deref().cloned()))
    }

    /// What the last batch stored (`None`: it failed; start the next one
    /// from its writers' own copies). Returns the followers to refresh
    /// with it: the socket that wrote adopts its own result, the others
    /// learn of it here (a store does not report its own writes), with
    /// the hub's copy of it to refresh them with.
    pub(crate) fn committed(
        &self,
        id: &SessionId,
        latest: Option<Session>,
    ) -> (Vec<Arc<dyn Follower>>, Option<Arc<Session>>) {
        let mut entries = self.lock();
        entries
            .change(id, |entry| {
                entry.latest = latest.map(view);
                let followers = if entry.latest.is_some() {
                    entry.live()
                } else {
                    Vec::new()
                };
                (followers, entry.latest.clone())
            })
            .unwrap_or_default()
    }

    // ---- followers ----------------------------------------------------------

    /// Registers a handshake about to load session `id`.
    pub(crate) fn watch(self: &Arc<Self>, id: SessionId) -> Watch {
        let ends = {
            let mut entries = self.lock();
            let entry = entries.map.entry(id.clone()).or_default();
            entry.watchers = entry.watchers.saturating_add(1);
            entry.ends
        };
        Watch {
            hub: Arc::clone(self),
            id,
            ends,
            done: false,
        }
    }

    /// Session `id` ended: its followers, to be told (they are dropped
    /// from the hub, and handshakes loading it will refuse it).
    pub(crate) fn ended(&self, id: &SessionId) -> Vec<Arc<dyn Follower>> {
        let mut entries = self.lock();
        let Some((followers, idle)) = entries.change(id, |entry| {
            entry.ends = entry.ends.wrapping_add(1);
            entry.latest = None;
            let followers = entry.live();
            entry.followers.clear();
            (followers, entry.idle())
        }) else {
            return Vec::new();
        };
        if idle {
            entries.map.remove(id);
        }
        followers
    }

    /// The follower of `id` at `address` went away (its connection
    /// closed): drops it from the session's followers, and forgets the
    /// session once nothing else holds it here.
    pub(crate) fn unfollow(&self, id: &SessionId, address: usize) {
        let mut entries = self.lock();
        let idle = entries.change(id, |entry| {
            entry.followers.remove(address);
            entry.idle()
        });
        if idle == Some(true) {
            entries.map.remove(id);
        }
    }

    /// Whether the hub follows `id` (or a handshake is loading it), i.e.
    /// whether a change to it matters here.
    pub(crate) fn follows(&self, id: &SessionId) -> bool {
        match self.lock().map.get(id) {
            Some(e) => e.watchers > 0 || e.has_live(),
            None => false,
        }
    }

    /// Whether the hub's latest copy of `id` rests on exactly `bytes` (then
    /// a reported write of them is this process's own).
    pub(crate) fn is_latest(&self, id: &SessionId, bytes: &[u8]) -> bool {
        self.lock().map.get(id).is_some_and(|e| {
            e.latest.as_ref().is_some_and(|s| s.rests_on(bytes))
                || e.busy
                    .as_ref()
                    .is_some_and(|b| b.written.iter().any(|w| &w[..] == bytes))
        })
    }

    /// A compare-and-set of `id` is about to write `bytes`.
    pub(crate) fn writing(&self, id: &SessionId, bytes: &session_sockets_core::Bytes) {
        if let Some(e) = self.lock().map.get_mut(id) {
            let written = &mut e.busy().written;
            if written.len() == WRITTEN {
                written.pop_front();
            }
            written.push_back(bytes.clone());
        }
    }

    /// Asks for a reload of `id`; `true` if the caller must start it (none
    /// is running; one that is running goes round once more).
    pub(crate) fn want_reload(&self, id: &SessionId) -> bool {
        let mut entries = self.lock();
        let Some(entry) = entries.map.get_mut(id) else {
            return false;
        };
        let busy = entry.busy();
        if busy.reloading {
            busy.again = true;
            return false;
        }
        busy.reloading = true;
        busy.again = false;
        true
    }

    /// A reload of `id` found `fresh`: the followers to refresh with it,
    /// and the hub's copy of it to refresh them with (the one it had when
    /// that rests on the same record: followers already on it skip the
    /// refresh).
    pub(crate) fn reloaded(
        &self,
        id: &SessionId,
        fresh: Session,
    ) -> (Vec<Arc<dyn Follower>>, Arc<Session>) {
        let mut entries = self.lock();
        let Some(entry) = entries.map.get_mut(id) else {
            return (Vec::new(), Arc::new(fresh));
        };
        let before = Entries::expiry_of(entry);
        let fresh = match &entry.latest {
            // The copy the hub has (and its followers share) already.
            Some(latest) if latest.rests_on_same(&fresh) => Arc::clone(latest),
            _ => {
                let fresh = view(fresh);
                entry.latest = Some(Arc::clone(&fresh));
                fresh
            }
        };
        let followers = entry.live();
        let after = Entries::expiry_of(entry);
        entries.reindex(id, before, after);
        if !followers.is_empty() {
            // Just loaded from the store, after a write there (whose TTL is
            // fresh): its keep-alive comes due one interval from now.
            entries.touched_now(id);
        }
        (followers, fresh)
    }

    /// The reload of `id` finished; `true` if it must go round again.
    pub(crate) fn reload_done(&self, id: &SessionId) -> bool {
        let mut entries = self.lock();
        let Some(entry) = entries.map.get_mut(id) else {
            return false;
        };
        let busy = entry.busy();
        if std::mem::take(&mut busy.again) {
            return true;
        }
        busy.reloading = false;
        if busy.queue.is_empty() && !busy.committing && busy.written.is_empty() {
            // Nothing left that only writes and reloads use: a re-validation
            // of every followed session (after lost events) does not leave
            // each of them holding it.
            entry.busy = None;
        }
        if entry.idle() {
            entries.map.remove(id);
        }
        false
    }

    /// Every followed session, for a re-validation after lost events.
    pub(crate) fn followed(&self) -> Vec<SessionId> {
        self.lock()
            .map
            .iter()
            .filter(|(_, e)| e.has_live())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Followed sessions last touched before `before`, with the copy to
    /// touch; marks them touched now. Visits only those (and stale queue
    /// items), oldest first: not every followed session.
    pub(crate) fn due_for_touch(&self, before: Instant) -> Vec<Session> {
        let mut entries = self.lock();
        let mut due = Vec::new();
        // Due, but with no copy to touch yet (its last write failed): tried
        // again on the next look, ahead of everything else still queued.
        let mut retry = Vec::new();
        while let Some((at, _)) = entries.touch.front()
            && *at < before
        {
            let Some((at, id)) = entries.touch.pop_front() else {
                break;
            };
            let Some(e) = entries.map.get(&id) else {
                continue;
            };
            if e.touched != Some(at) || !e.has_live() {
                // Touched again since (a newer item stands for it), or no
                // longer followed (following again queues it anew).
                continue;
            }
            match &e.latest {
                Some(s) => {
                    due.push(Session::clone(s));
                    entries.touched_now(&id);
                }
                None => retry.push((at, id)),
            }
        }
        for item in retry.into_iter().rev() {
            entries.touch.push_front(item);
        }
        due
    }

    /// The latest copies of the followed sessions whose record's expiry
    /// ([`Meta::expires_ms`]) is at or before `now_ms` (milliseconds since
    /// the epoch), soonest first: the candidates for the caller's
    /// `Config::has_expired`. Visits only those.
    ///
    /// [`Meta::expires_ms`]: session_sockets_core::Meta::expires_ms
    pub(crate) fn expired(&self, now_ms: i64) -> Vec<Arc<Session>> {
        let entries = self.lock();
        entries
            .expiry
            .iter()
            .take_while(|(ms, _)| *ms <= now_ms)
            .filter_map(|(_, id)| entries.map.get(&id.0).filter(|e| e.has_live()))
            .filter_map(|e| e.latest.clone())
            .collect()
    }

    /// The hub's copy of `id`, if a follower holding `copy` may hold it
    /// instead (see [`interchangeable`]).
    pub(crate) fn shareable(&self, id: &SessionId, copy: &Session) -> Option<Arc<Session>> {
        let entries = self.lock();
        let latest = entries.map.get(id)?.latest.as_ref()?;
        interchangeable(copy, latest).then(|| Arc::clone(latest))
    }

    /// A touch stored `touched` (its cookie refreshed).
    pub(crate) fn touched(&self, touched: &Session) {
        self.lock().change(touched.id(), |e| {
            if e.latest.as_ref().is_some_and(|l| l.rests_on_same(touched)) {
                e.latest = Some(view(touched.clone()));
            }
        });
    }

    // ---- events -------------------------------------------------------------

    /// `true` if the caller must start the event task: not started yet,
    /// and the handle is not stopping.
    pub(crate) fn start_events(&self) -> bool {
        let mut events = self.events();
        if events.started || events.stopped {
            return false;
        }
        events.started = true;
        events.running = true;
        true
    }

    /// The event task ended.
    pub(crate) fn events_ended(&self) {
        self.events().running = false;
    }

    /// Whether the event task runs.
    pub(crate) fn events_running(&self) -> bool {
        self.events().running
    }

    /// Tells the event task to end (the handle stops).
    pub(crate) fn stop_events(&self) {
        let mut events = self.events();
        events.stopped = true;
        if let Some(w) = events.waker.take() {
            w.wake();
        }
    }

    /// Whether the event task must end.
    pub(crate) fn events_stopped(&self) -> bool {
        self.events().stopped
    }

    /// A store event, from the store's own context: queued for the event
    /// task.
    pub(crate) fn push_event(&self, event: StoreEvent) {
        let mut events = self.events();
        events.queue.push_back(event);
        if let Some(w) = events.waker.take() {
            w.wake();
        }
    }

    /// The next queued event, or `Pending` (waking `cx` on the next push).
    pub(crate) fn poll_event(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<StoreEvent> {
        let mut events = self.events();
        match events.queue.pop_front() {
            Some(e) => std::task::Poll::Ready(e),
            None => {
                events.waker = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use session_sockets_core::codec::record::SessionCookie;

    use super::*;

    struct Socket;

    impl Follower for Socket {
        fn refresh(&self, _: &Arc<Session>) {}
        fn share(&self, _: &Arc<Session>, _: &Arc<Session>) {}
        fn end(&self, _: SessionEnd) {}
    }

    /// A session whose cookie expires at `expires_ms` (`None`: a browser
    /// session cookie).
    fn session(id: &str, expires_ms: Option<i64>) -> Arc<Session> {
        let cookie = match expires_ms {
            Some(at) => SessionCookie::new(Some(1000), at - 1000),
            None => SessionCookie::new(None, 0),
        };
        Arc::new(Session::new(SessionId::new(id), cookie, Default::default()))
    }

    /// A socket following `session` on `hub`; dropping it unfollows.
    fn follow(hub: &Arc<Hub>, session: &Arc<Session>) -> Arc<dyn Follower> {
        let socket: Arc<dyn Follower> = Arc::new(Socket);
        let watch = hub.watch(session.id().clone());
        assert!(!matches!(
            watch.follow(Arc::downgrade(&socket), session),
            Follow::Ended
        ));
        socket
    }

    /// The address the hub knows `socket` by.
    fn at(socket: &Arc<dyn Follower>) -> usize {
        Arc::as_ptr(socket).cast::<()>().addr()
    }

    fn ids(sessions: Vec<Session>) -> Vec<String> {
        let mut ids: Vec<String> = sessions
            .iter()
            .map(|s| s.id().expose().to_owned())
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn keep_alive_visits_the_due_sessions_once_per_interval_and_forgets_the_unfollowed() {
        let hub = Arc::new(Hub::default());
        let a = follow(&hub, &session("a", None));
        std::thread::sleep(Duration::from_millis(20));
        let mid = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        let b = follow(&hub, &session("b", None));
        // Only `a` was followed before `mid`.
        assert_eq!(ids(hub.due_for_touch(mid)), ["a"]);
        assert!(hub.due_for_touch(mid).is_empty(), "touched once");
        // A second socket of `b` does not queue it again.
        let b2 = follow(&hub, &session("b", None));
        let later = Instant::now();
        assert_eq!(ids(hub.due_for_touch(later)), ["a", "b"]);
        assert!(hub.due_for_touch(later).is_empty());
        // Unfollowed: no longer touched, and its entry is gone.
        for socket in [b, b2] {
            let at = at(&socket);
            drop(socket);
            hub.unfollow(&SessionId::new("b"), at);
        }
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(ids(hub.due_for_touch(Instant::now())), ["a"]);
        assert!(!hub.follows(&SessionId::new("b")));
        // Followed again: due one interval after that.
        let b3 = follow(&hub, &session("b", None));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(ids(hub.due_for_touch(Instant::now())), ["a", "b"]);
        let stale = hub.lock().touch.len();
        assert_eq!(stale, 2, "one queued item per followed session");
        drop((a, b3));
    }

    #[test]
    fn expiry_lists_only_followed_sessions_whose_cookie_expired() {
        let hub = Arc::new(Hub::default());
        let a = follow(&hub, &session("a", Some(1_000)));
        let b = follow(&hub, &session("b", Some(2_000)));
        let _c = follow(&hub, &session("c", None));
        let expired =
            |ms| -> Vec<SessionId> { hub.expired(ms).iter().map(|s| s.id().clone()).collect() };
        assert!(expired(999).is_empty());
        assert_eq!(expired(1_000), [SessionId::new("a")]);
        assert_eq!(expired(5_000), [SessionId::new("a"), SessionId::new("b")]);
        // A write moves the expiry.
        let (_, _) = hub.committed(
            &SessionId::new("a"),
            Some(Session::clone(&session("a", Some(3_000)))),
        );
        assert_eq!(expired(2_500), [SessionId::new("b")]);
        // Ended, or no longer followed: not listed.
        let _ = hub.ended(&SessionId::new("b"));
        assert_eq!(expired(2_500), Vec::<SessionId>::new());
        let a_at = at(&a);
        drop(a);
        hub.unfollow(&SessionId::new("a"), a_at);
        assert!(hub.expired(i64::MAX).is_empty());
        assert!(hub.lock().expiry.is_empty());
        drop(b);
    }

    #[test]
    fn r13_expiry_index_reads_the_tower_sessions_expiry_date() {
        use session_sockets_core::Meta;
        use session_sockets_core::format::tower_sessions::{ExpiryDate, Id};
        let hub = Arc::new(Hub::default());
        let at = |ms: u64| std::time::UNIX_EPOCH + Duration::from_millis(ms);
        let tower = |ms| {
            let meta = Meta::TowerSessions {
                id: Id::from_i128(1),
                // 1970 plus seconds: in the range `time` reads.
                expiry_date: ExpiryDate::from_system_time(at(ms)).unwrap(),
            };
            Arc::new(Session::with_meta(
                SessionId::new("t"),
                meta,
                Default::default(),
            ))
        };
        let t = follow(&hub, &tower(4_000));
        assert!(hub.expired(3_999).is_empty());
        assert_eq!(hub.expired(4_000)[0].id(), &SessionId::new("t"));
        // A save renews the date: the index follows it.
        let _ = hub.committed(&SessionId::new("t"), Some(Session::clone(&tower(9_000))));
        assert!(hub.expired(8_999).is_empty());
        assert_eq!(hub.expired(9_000).len(), 1);
        drop(t);
    }

    #[test]
    fn r32_a_socket_following_while_the_last_one_closes_keeps_its_session_touched() {
        let hub = Arc::new(Hub::default());
        let s = session("s", None);
        let a = follow(&hub, &s);
        let a_at = at(&a);
        std::thread::sleep(Duration::from_millis(5));
        // A's connection closes: its last `Arc` is gone, its `Drop` has not
        // reached the hub yet; the once-a-second look drops the item.
        drop(a);
        assert!(hub.due_for_touch(Instant::now()).is_empty());
        // B follows before A's `unfollow`: its keep-alive is queued anew.
        let b = follow(&hub, &s);
        hub.unfollow(s.id(), a_at);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(ids(hub.due_for_touch(Instant::now())), ["s"]);
        drop(b);
    }

    #[test]
    fn r16_without_keep_alive_the_touch_queue_stays_bounded() {
        let hub = Arc::new(Hub::default());
        // Nothing ever asks what is due (keep-alive off).
        for i in 0..1000 {
            let s = session(&format!("s{i}"), None);
            let f = follow(&hub, &s);
            let f_at = at(&f);
            drop(f);
            hub.unfollow(s.id(), f_at);
        }
        let kept = follow(&hub, &session("kept", None));
        let entries = hub.lock();
        assert_eq!(entries.map.len(), 1);
        assert!(entries.touch.len() <= 2 * entries.map.len() + 64);
        let forgotten = entries
            .touch
            .iter()
            .filter(|(_, id)| !entries.map.contains_key(id));
        // At most the few pushed since the last compaction.
        assert!(
            forgotten.count() <= 66,
            "ids of forgotten sessions are held"
        );
        drop(entries);
        drop(kept);
    }

    #[test]
    fn r32_a_reload_counts_as_a_touch() {
        let hub = Arc::new(Hub::default());
        let a = follow(&hub, &session("a", None));
        std::thread::sleep(Duration::from_millis(10));
        let mid = Instant::now();
        // Another writer's change reloaded here: its TTL is fresh.
        let _ = hub.reloaded(&SessionId::new("a"), Session::clone(&session("a", None)));
        assert!(hub.due_for_touch(mid).is_empty());
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(ids(hub.due_for_touch(Instant::now())), ["a"]);
        drop(a);
    }

    #[test]
    fn a_follower_leaving_drops_itself_only_and_the_last_one_forgets_the_session() {
        let hub = Arc::new(Hub::default());
        let s = session("s", Some(i64::MAX));
        let sockets: Vec<_> = (0..5).map(|_| follow(&hub, &s)).collect();
        let count = |hub: &Hub| hub.lock().map.get(s.id()).map_or(0, |e| e.followers.len());
        assert_eq!(count(&hub), 5);
        // Another session's address, or one that never followed: nothing.
        let stranger: Arc<dyn Follower> = Arc::new(Socket);
        hub.unfollow(s.id(), at(&stranger));
        assert_eq!(count(&hub), 5);
        let mut left = 5;
        for socket in sockets {
            let socket_at = at(&socket);
            drop(socket);
            hub.unfollow(s.id(), socket_at);
            left -= 1;
            assert_eq!(count(&hub), left);
            assert_eq!(hub.follows(s.id()), left > 0);
            assert_eq!(hub.expired(i64::MAX).len(), usize::from(left > 0));
        }
        assert!(hub.lock().map.is_empty(), "the session is forgotten");
    }
}
