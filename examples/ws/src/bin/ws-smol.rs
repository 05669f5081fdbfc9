//! A WebSocket server on smol that reads the session from the upgrade
//! request and answers `whoami` with the session's JSON. See `--help`.

use std::process::ExitCode;

use session_sockets::runtime::smol::Smol;

fn main() -> ExitCode {
    session_sockets_ws_examples::main::<smol::net::TcpListener, _>(Smol, smol::block_on, |task| {
        smol::spawn(task).detach()
    })
}
