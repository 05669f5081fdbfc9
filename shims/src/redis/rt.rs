//! Spawning and sleeping for the cluster store's background tasks and
//! retries, on the runtime the store runs in, as redis-rs chooses its own:
//! tokio inside a tokio runtime, smol's executor and timers anywhere else
//! (smol, async-std, a plain `block_on`).

use std::future::Future;
use std::time::Duration;

/// Runs `task` in the background.
pub(super) fn spawn(task: impl Future<Output = ()> + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(task);
        }
        Err(_) => smol::spawn(task).detach(),
    }
}

/// Sleeps for `d`.
pub(super) async fn sleep(d: Duration) {
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::time::sleep(d).await;
    } else {
        smol::Timer::after(d).await;
    }
}

/// `fut`, or `None` once `d` has passed.
pub(super) async fn timeout<T>(d: Duration, fut: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        sleep(d).await;
        None
    })
    .await
}
