//! The smol runtime module (feature `smol`).

use std::time::{Duration, Instant};

/// smol's timer (`async_io::Timer`, which `smol::Timer` re-exports), for
/// [`SessionSockets`](crate::SessionSockets) on smol. It runs on any
/// executor: async-io drives its timers from its own reactor.
///
/// smol is also the successor of async-std, which is discontinued.
#[derive(Clone, Copy, Debug, Default)]
pub struct Smol;

impl super::Runtime for Smol {
    type Sleep = async_io::Timer;

    fn sleep(&self, duration: Duration) -> Self::Sleep {
        async_io::Timer::after(duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        async_io::Timer::at(deadline)
    }
}
