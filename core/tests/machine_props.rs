//! Every write machine under arbitrary inputs: any replies (right or wrong
//! kind, malformed records, short random bytes), to any ids, at any times,
//! in any order. None panics; each finishes at most once and then stays
//! finished; the number of requests stays bounded (R23, R24).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::Map;
use session_sockets_core::machines::{
    Commit, Create, Destroy, Edit, Handshake, Regenerate, Reload, Save, Touch,
};
use session_sockets_core::{
    Bytes, Config, Machine, Reply, Request, RequestId, Session, SessionId, WriteError,
};
use support::{COOKIE, at, config_with, t};

const REC: &str = r#"{"cookie":{"originalMaxAge":60000,"expires":"2026-11-29T12:15:27.949Z","httpOnly":true,"path":"/"},"n":1}"#;

/// Rolling sessions, and at most four save attempts.
fn config() -> Arc<Config> {
    config_with(|b| b.rolling(true).max_save_attempts(4))
}

/// [`REC`] with a change of its own.
fn loaded() -> Session {
    let mut s = support::loaded(REC);
    s.insert("mine", 1).unwrap();
    s
}

fn reply() -> impl Strategy<Value = Reply> {
    let bytes = prop_oneof![
        Just(REC.as_bytes().to_vec()),
        Just(br#"{"cookie":{"expires":null},"n":2}"#.to_vec()),
        Just(br#"{"cookie":{"expires":"2000-01-01T00:00:00.000Z"}}"#.to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
    ];
    prop_oneof![
        bytes.clone().prop_map(|b| Reply::Found(Bytes::from(b))),
        Just(Reply::NotFound),
        Just(Reply::Created),
        Just(Reply::Exists),
        Just(Reply::Swapped),
        bytes.clone().prop_map(|b| Reply::Conflict(Bytes::from(b))),
        Just(Reply::Gone),
        Just(Reply::Done),
        bytes.prop_map(|b| Reply::Random(Bytes::from(b))),
        Just(Reply::Failed("down".into())),
    ]
}

#[derive(Debug, Clone)]
enum Event {
    /// Answer the last polled request (or, if `wrong`, a nearby id).
    Reply {
        wrong: u64,
        reply: Reply,
        at: i64,
    },
    Timeout {
        at: i64,
    },
}

fn events() -> impl Strategy<Value = Vec<Event>> {
    let ev = prop_oneof![
        4 => ((0u64..3), reply(), 0i64..2500).prop_map(|(wrong, reply, at)| Event::Reply { wrong, reply, at }),
        1 => (0i64..2500).prop_map(|at| Event::Timeout { at }),
    ];
    proptest::collection::vec(ev, 0..24)
}

/// Gives `ev` to `m` (a reply to the last request `last`, or to an id
/// near it; or a timeout), at `now` or later: time never goes back.
fn apply<M: Machine>(m: &mut M, ev: &Event, last: Option<RequestId>, now: &mut i64) {
    match ev {
        Event::Reply { wrong, reply, at } => {
            *now = (*now).max(*at);
            let id = last.map_or(RequestId(*wrong), |i| RequestId(i.0 + wrong));
            m.handle_reply(id, reply.clone(), t(*now));
        }
        Event::Timeout { at } => {
            *now = (*now).max(*at);
            m.handle_timeout(t(*now));
        }
    }
}

fn run<M, T>(mut m: M, events: &[Event]) -> Result<(), TestCaseError>
where
    M: Machine<Outcome = Result<T, WriteError>>,
{
    let mut outcomes = 0;
    let mut requests = 0;
    let mut last: Option<RequestId> = None;
    let mut now = 0;
    for ev in events {
        while let Some(r) = m.poll_request() {
            prop_assert_eq!(outcomes, 0, "no request after the outcome");
            if let Request::CompareAndSet { ttl_secs, .. }
            | Request::Create { ttl_secs, .. }
            | Request::Touch { ttl_secs, .. } = &r
            {
                prop_assert!(*ttl_secs > 0, "never a TTL <= 0");
            }
            requests += 1;
            last = Some(r.id());
        }
        apply(&mut m, ev, last, &mut now);
        if m.poll_outcome().is_some() {
            outcomes += 1;
        }
        prop_assert!(outcomes <= 1, "the outcome comes once");
    }
    prop_assert!(requests <= 12, "bounded: {}", requests);
    Ok(())
}

/// After any events, a machine whose store answers nothing more finishes
/// once `handle_timeout` is called at its deadline (R23): an unfinished
/// machine always has a deadline, and going from deadline to deadline ends
/// it, with a timeout, within the store deadline of its last request (and
/// a backoff).
fn finishes_at_its_deadline<M: Machine>(mut m: M, events: &[Event]) -> Result<(), TestCaseError> {
    let mut last: Option<RequestId> = None;
    let mut now = 0;
    let mut finished = false;
    for ev in events {
        while let Some(r) = m.poll_request() {
            last = Some(r.id());
        }
        apply(&mut m, ev, last, &mut now);
        finished |= m.poll_outcome().is_some();
    }
    let silent_from = t(now);
    let deadline = config().store_deadline();
    for _ in 0..64 {
        while m.poll_request().is_some() {}
        finished |= m.poll_outcome().is_some();
        if finished || m.is_finished() {
            return Ok(());
        }
        let Some(at) = m.poll_timeout() else {
            return Err(TestCaseError::fail(
                "an unfinished machine has no deadline: it would wait forever",
            ));
        };
        prop_assert!(
            at <= silent_from + 2 * deadline + Duration::from_millis(16),
            "a deadline {:?} past the store deadline",
            at - silent_from
        );
        m.handle_timeout(at);
    }
    Err(TestCaseError::fail("not finished after 64 deadlines"))
}

fn handshake() -> Handshake {
    let mut hs = Handshake::new(config(), at(0));
    hs.handle_headers([("cookie", COOKIE)], t(0));
    hs
}

fn commit() -> Commit {
    let (a, b) = (loaded(), loaded());
    Commit::new(
        config(),
        a.clone(),
        vec![Edit::save(&a), Edit::save(&b)],
        at(0),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn r23_every_machine_finishes_once_its_deadline_is_called(ev in events()) {
        finishes_at_its_deadline(handshake(), &ev)?;
        finishes_at_its_deadline(Reload::new(config(), &SessionId::new("sid-1"), at(0)), &ev)?;
        finishes_at_its_deadline(Create::new(config(), Map::new(), at(0)), &ev)?;
        finishes_at_its_deadline(Save::new(config(), loaded(), at(0)), &ev)?;
        finishes_at_its_deadline(commit(), &ev)?;
        finishes_at_its_deadline(Touch::new(config(), loaded(), at(0)), &ev)?;
        finishes_at_its_deadline(Destroy::new(config(), &SessionId::new("sid-1"), at(0)), &ev)?;
        finishes_at_its_deadline(Regenerate::new(config(), loaded(), true, at(0)), &ev)?;
    }

    #[test]
    fn create_survives_anything(ev in events()) {
        run(Create::new(config(), Map::new(), at(0)), &ev)?;
    }

    #[test]
    fn save_survives_anything(ev in events()) {
        run(Save::new(config(), loaded(), at(0)), &ev)?;
    }

    #[test]
    fn save_with_update_survives_anything(ev in events()) {
        let update = Box::new(|s: &mut Session| {
            let n = s.get::<i64>("n").ok().flatten().unwrap_or(0);
            s.insert("n", n + 1).unwrap();
        });
        run(Save::update(config(), loaded(), update, at(0)), &ev)?;
    }

    #[test]
    fn touch_survives_anything(ev in events()) {
        run(Touch::new(config(), loaded(), at(0)), &ev)?;
    }

    #[test]
    fn destroy_survives_anything(ev in events()) {
        run(Destroy::new(config(), &SessionId::new("sid-1"), at(0)), &ev)?;
    }

    #[test]
    fn regenerate_survives_anything(ev in events()) {
        run(Regenerate::new(config(), loaded(), true, at(0)), &ev)?;
    }
}
