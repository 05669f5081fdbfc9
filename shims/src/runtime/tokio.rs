//! The tokio runtime module (feature `tokio`).

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// tokio's timer and `tokio::spawn`, for
/// [`SessionSockets`](crate::SessionSockets) on tokio.
///
/// Use it inside a tokio runtime with the time driver enabled
/// (`#[tokio::main]` and `Builder::enable_all` do that); tokio panics with
/// "A Tokio 1.x context was found, but timers are disabled" otherwise.
/// Deadlines are on tokio's clock, so they follow tokio's paused time in
/// tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

impl super::Runtime for Tokio {
    type Sleep = ::tokio::time::Sleep;

    fn sleep(&self, duration: Duration) -> Self::Sleep {
        ::tokio::time::sleep(duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        ::tokio::time::sleep_until(deadline.into())
    }

    fn now(&self) -> Instant {
        ::tokio::time::Instant::now().into_std()
    }

    fn spawn(&self, task: Pin<Box<dyn Future<Output = ()> + Send + 'static>>) {
        drop(::tokio::spawn(task));
    }
}
