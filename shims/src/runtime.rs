//! The runtime seam: the one thing the driver needs from an async runtime.
//!
//! The driver waits for the store, and gives up at the machine's deadline.
//! Waiting needs no runtime (store futures wake themselves); giving up needs
//! a timer, and a timer is the only thing a runtime module supplies. Each
//! module is a few lines behind a feature of the runtime's name:
//!
//! | feature     | type                          | timer                          |
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
use std::time::{Duration, SystemTime};

#[cfg(feature = "async-std")]
pub mod async_std;
#[cfg(feature = "smol")]
pub mod smol;
#[cfg(feature = "tokio")]
pub mod tokio;

/// What the driver needs from an async runtime: a timer.
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

    /// The current time, given to the machines. Override only to test with
    /// a controlled clock.
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A future that completes at `deadline` (at once if it has passed).
pub(crate) fn sleep_until<R: Runtime + ?Sized>(rt: &R, deadline: SystemTime) -> R::Sleep {
    let left = deadline.duration_since(rt.now()).unwrap_or(Duration::ZERO);
    rt.sleep(left)
}
