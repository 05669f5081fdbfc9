//! The runtime seam: the one thing the driver needs from an async runtime.
//!
//! The driver waits for the store, and gives up at the machine's deadline.
//! Waiting needs no runtime (store futures wake themselves); giving up needs
//! a timer, and a timer (plus, where the runtime has its own, its clock) is
//! the only thing a runtime module supplies. Each module is a few lines
//! behind a feature of the runtime's name:
//!
//! | feature     | type                          | timer (and spawn)              |
//! |-------------|-------------------------------|--------------------------------|
//! | `tokio`     | `runtime::tokio::Tokio`       | `tokio::time::sleep`           |
//! | `smol`      | `runtime::smol::Smol`         | `async_io::Timer` (smol's own) |
//! | `async-std` | `runtime::async_std::AsyncStd`| `async_std::task::sleep`       |
//!
//! async-std is discontinued upstream (RUSTSEC-2025-0052); its module keeps
//! working for existing applications, and smol is its successor.
//!
//! Any other runtime plugs in by implementing [`Runtime`].

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use session_sockets_core::Now;

#[cfg(feature = "async-std")]
pub mod async_std;
#[cfg(feature = "smol")]
pub mod smol;
#[cfg(feature = "tokio")]
pub mod tokio;

/// What the driver needs from an async runtime: a timer, and the two
/// clocks.
///
/// Deadlines are monotonic: the driver sleeps until an [`Instant`] and
/// hands the machines [`Runtime::now`]. The wall clock ([`Runtime::wall`])
/// is read once when an operation starts, for expiry dates and TTLs; a wall
/// clock stepped forward or back while an operation runs does not affect
/// it.
///
/// ```
/// use std::time::Duration;
/// use session_sockets::runtime::Runtime;
///
/// /// A runtime that never waits; a real one returns its timer future.
/// #[derive(Clone, Copy, Debug, Default)]
/// struct MyRuntime;
///
/// impl Runtime for MyRuntime {
///     type Sleep = std::future::Ready<()>; // a real one waits `duration`
///     fn sleep(&self, _duration: Duration) -> Self::Sleep {
///         std::future::ready(())
///     }
/// }
/// ```
pub trait Runtime: Send + Sync + 'static {
    /// The future [`Runtime::sleep`] returns; its output is ignored.
    type Sleep: Future + Send;

    /// A future that completes once `duration` has passed.
    fn sleep(&self, duration: Duration) -> Self::Sleep;

    /// A future that completes at `deadline` (at once if it has passed), on
    /// the clock of [`Runtime::now`]. The default sleeps for the time left;
    /// runtimes with a timer for instants use it.
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        self.sleep(deadline.saturating_duration_since(self.now()))
    }

    /// The monotonic time, for deadlines. Override it together with
    /// [`Runtime::sleep_until`] to run on another clock (a test clock, a
    /// runtime's paused time).
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// The wall-clock time, for expiry dates and TTLs. Override only to test
    /// with a controlled clock.
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }

    /// Runs `task` to completion in the background, detached. The write
    /// queue runs each session's commits this way ([`SessionSockets::save`](crate::SessionSockets::save)),
    /// so a write that started finishes even if the caller that asked for
    /// it goes away.
    ///
    /// The default runs each task on a new OS thread with its own
    /// `block_on`: correct for store and timer futures that need no runtime
    /// context, but a thread per task; a runtime module spawns on its
    /// executor instead, as the tokio, smol and async-std ones do.
    fn spawn(&self, task: Pin<Box<dyn Future<Output = ()> + Send + 'static>>) {
        std::thread::spawn(move || futures_lite::future::block_on(task));
    }
}

/// Both clocks, read once as an operation starts.
pub(crate) fn start<R: Runtime + ?Sized>(rt: &R) -> Now {
    Now::new(rt.now(), rt.wall())
}
