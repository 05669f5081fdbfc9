//! A WebSocket server on async-std that reads the session from the upgrade
//! request and answers `whoami` with the session's JSON. See `--help`.
//!
//! async-std is discontinued upstream (RUSTSEC-2025-0052); `ws-smol` is the
//! same server on smol, its successor.

use std::process::ExitCode;

use session_sockets::runtime::async_std::AsyncStd;
use session_sockets_ws_examples::{Options, serve};

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    async_std::task::block_on(async {
        let sockets = match options.sockets(AsyncStd).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        };
        let listener = match async_std::net::TcpListener::bind(&options.addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cannot listen on {}: {e}", options.addr);
                return ExitCode::FAILURE;
            }
        };
        match listener.local_addr() {
            Ok(addr) => println!("listening on ws://{addr}"),
            Err(e) => eprintln!("listening (address unknown: {e})"),
        }
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    continue;
                }
            };
            let (sockets, head_timeout) = (sockets.clone(), options.head_timeout);
            async_std::task::spawn(async move {
                if let Err(e) = serve(stream, sockets, head_timeout).await {
                    eprintln!("connection ended: {e}");
                }
            });
        }
    })
}
