//! The smol runtime module (feature `smol`).

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// smol's timer (`smol::Timer`) and its global executor (`smol::spawn`),
/// for [`SessionSockets`](crate::SessionSockets) on smol. The timer runs on
/// any executor: async-io drives it from its own reactor.
///
/// smol is also the successor of async-std, which is discontinued.
#[derive(Clone, Copy, Debug, Default)]
pub struct Smol;

impl super::Runtime for Smol {
    type Sleep = ::smol::Timer;

    fn sleep(&self, duration: Duration) -> Self::Sleep {
        ::smol::Timer::after(duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        ::smol::Timer::at(deadline)
    }

    fn spawn(&self, task: Pin<Box<dyn Future<Output = ()> + Send + 'static>>) {
        ::smol::spawn(task).detach();
    }
}
