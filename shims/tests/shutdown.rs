//! R38: a handle that stops refuses new operations, lets the writes already
//! asked for finish (or fail) within the store deadline, ends its event
//! subscription, and reports what became of them.
#![cfg(feature = "tokio")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Map;
use session_sockets::runtime::tokio::Tokio;
use session_sockets::{Failure, HandshakeError, Session, SessionSockets, WriteError};
use support::hooked::{Act, Call, Hooked};
use support::{config_with, cookie_pair};

fn add_one(s: &mut Session) -> u64 {
    let n = s.get::<u64>("n").unwrap().unwrap_or(0) + 1;
    s.insert("n", n).unwrap();
    n
}

/// Signs in and follows the session, so that the handle subscribes to the
/// store's events.
async fn followed(
    sessions: &SessionSockets<Tokio>,
) -> (Session, session_sockets::LiveSession<Tokio>) {
    let created = sessions.create(Map::new()).await.unwrap();
    let mut headers = http::HeaderMap::new();
    let pair = cookie_pair(&created.set_cookie);
    headers.insert("cookie", pair.parse().unwrap());
    let live = sessions.live_session(&headers, |_| {}).await.unwrap();
    (created.session, live)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r38_queued_writes_land_new_ones_are_refused_and_events_end() {
    let store = Arc::new(Hooked::default());
    let sessions = SessionSockets::new(
        config_with(|b| b.store_deadline(Duration::from_secs(3))),
        store.clone(),
    );
    let (session, _live) = followed(&sessions).await;
    let until = Instant::now() + Duration::from_secs(2);
    while store.subscriptions() == 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(store.subscriptions(), 1, "the handle follows the store");

    // Every compare-and-set takes 30 ms: writes queue behind each other.
    store.set_hook(|call| match call {
        Call::CompareAndSet => Act::After(Box::pin(tokio::time::sleep(Duration::from_millis(30)))),
        _ => Act::Pass,
    });
    let writes: Vec<_> = (0..20)
        .map(|_| {
            let (sessions, session) = (sessions.clone(), session.clone());
            tokio::spawn(async move { sessions.update(session, add_one).await.map(|(_, n)| n) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(
        store.count(Call::CompareAndSet) >= 1,
        "a commit is in flight"
    );

    let report = sessions.shutdown().await;
    let mut acked = Vec::new();
    for w in writes {
        acked.push(
            w.await
                .unwrap()
                .expect("a write asked for before the stop lands"),
        );
    }
    acked.sort_unstable();
    assert_eq!(
        acked,
        (1..=20).collect::<Vec<u64>>(),
        "each write once, none lost"
    );
    assert_eq!(report.failed, 0);
    assert_eq!(report.refused, 0);
    assert_eq!(report.unfinished, 0);
    assert!(
        report.landed >= 1 && report.landed <= 20,
        "the writes in flight at the stop: {report:?}"
    );
    assert_eq!(store.subscriptions(), 0, "the event subscription ended");
    assert!(sessions.is_shutting_down());

    // From now on, nothing reaches the store.
    store.clear_hook();
    let calls = store.total();
    let refused = sessions.update(session.clone(), add_one).await.unwrap_err();
    assert_eq!(refused, WriteError::Failed(Failure::ShuttingDown));
    assert_eq!(refused.reason(), "shutting_down");
    let headers = http::HeaderMap::new();
    assert_eq!(
        sessions.session(&headers).await.unwrap_err(),
        HandshakeError::Failed(Failure::ShuttingDown)
    );
    assert_eq!(store.total(), calls, "refused before any store call");
    let again = sessions.shutdown().await;
    assert_eq!(again.refused, 2);
    assert_eq!(again.landed, report.landed);

    // What the store holds is what the callers were told.
    let key = format!("sess:{}", session.id().expose());
    let bytes = session_sockets::store::Store::load(&*store, key.as_bytes())
        .await
        .unwrap()
        .unwrap();
    let record: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(record["n"], 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r38_a_store_that_never_answers_stops_within_the_deadline_and_nothing_is_reported_done() {
    let deadline = Duration::from_millis(300);
    let store = Arc::new(Hooked::default());
    let sessions = SessionSockets::new(config_with(|b| b.store_deadline(deadline)), store.clone());
    let session = sessions.create(Map::new()).await.unwrap().session;
    store.set_hook(|call| match call {
        Call::CompareAndSet => Act::Hang,
        _ => Act::Pass,
    });
    let writes: Vec<_> = (0..5)
        .map(|_| {
            let (sessions, session) = (sessions.clone(), session.clone());
            tokio::spawn(async move { sessions.update(session, add_one).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = Instant::now();
    let report = sessions.shutdown().await;
    assert!(
        started.elapsed() < deadline + Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    for w in writes {
        let e = w.await.unwrap().unwrap_err();
        assert!(
            matches!(
                e,
                WriteError::Failed(Failure::Timeout | Failure::ShuttingDown)
            ),
            "{e:?}"
        );
    }
    assert_eq!(report.landed, 0, "{report:?}");
}
