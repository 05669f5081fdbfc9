//! A WebSocket server on async-std that reads the session from the upgrade
//! request and answers `whoami` with the session's JSON. See `--help`.
//!
//! async-std is discontinued upstream (RUSTSEC-2025-0052); `ws-smol` is the
//! same server on smol, its successor.

use std::process::ExitCode;

use session_sockets::runtime::async_std::AsyncStd;

fn main() -> ExitCode {
    session_sockets_ws_examples::main::<async_std::net::TcpListener, _>(
        AsyncStd,
        async_std::task::block_on,
        |task| {
            async_std::task::spawn(task);
        },
    )
}
