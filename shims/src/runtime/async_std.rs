//! The async-std runtime module (feature `async-std`).
//!
//! async-std is discontinued upstream (RUSTSEC-2025-0052). This module keeps
//! existing applications working; new ones should use smol, its successor
//! (feature `smol`, `runtime::smol::Smol`).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// async-std's timer and task spawner, for [`SessionSockets`](crate::SessionSockets) on
/// async-std.
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncStd;

impl super::Runtime for AsyncStd {
    /// Boxed: `async_std::task::sleep` returns an unnameable future.
    type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

    fn sleep(&self, duration: Duration) -> Self::Sleep {
        Box::pin(::async_std::task::sleep(duration))
    }

    fn spawn(&self, task: Pin<Box<dyn Future<Output = ()> + Send + 'static>>) {
        // Detached: the handle is dropped, the task runs on.
        drop(::async_std::task::spawn(task));
    }
}
