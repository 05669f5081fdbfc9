//! Differential tests of `session_sockets_core::format` against the crates
//! whose bytes it must match (the tests are in `tests/`), and [`harness`]:
//! what the example apps' smoke tests share to run a real redis-server and
//! talk to an app, with the standard library only.

pub mod harness {
    //! A redis-server on a free loopback port, an example app started
    //! against it, and one-shot HTTP/1.1 and RESP requests. Everything is
    //! bounded in time and stopped on drop.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// A child process killed (and reaped) on drop.
    pub struct Process(pub Child);

    impl Drop for Process {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// A free port on 127.0.0.1 (free when asked; the caller binds it next).
    pub fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// A redis-server of its own, without persistence, on a free port;
    /// returns the process and its `redis://` URL once it answers PING.
    pub fn redis() -> (Process, String) {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        let process = Process(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(reply) = resp(port, &[b"PING"])
                && reply.as_deref() == Some(&b"PONG"[..])
            {
                break;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        (process, format!("redis://127.0.0.1:{port}"))
    }

    /// Starts `exe` with `args` and waits (at most 30 s) for its
    /// `listening on http://127.0.0.1:PORT` line; returns it and the port.
    pub fn app(exe: &str, args: &[&str]) -> (Process, u16) {
        let mut child = Command::new(exe)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the app starts");
        let stdout = child.stdout.take().unwrap();
        let process = Process(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line.strip_prefix("listening on http://127.0.0.1:") {
                    let _ = tx.send(port.trim().parse::<u16>().unwrap());
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the app prints `listening on http://127.0.0.1:PORT`");
        (process, port)
    }

    /// An HTTP answer: status, `Set-Cookie` values, body.
    #[derive(Debug)]
    pub struct Answer {
        /// The status code.
        pub status: u16,
        /// Every `Set-Cookie` header value, in order.
        pub set_cookies: Vec<String>,
        /// The body.
        pub body: String,
    }

    impl Answer {
        /// The `name=value` part of the first `Set-Cookie`, as a browser
        /// sends it back.
        pub fn cookie(&self) -> String {
            self.set_cookies
                .first()
                .expect("a Set-Cookie header")
                .split(';')
                .next()
                .unwrap()
                .to_owned()
        }
    }

    /// One HTTP/1.1 request (`Connection: close`) with an optional `Cookie`
    /// header, bounded to 10 s.
    pub fn http(port: u16, method: &str, path: &str, cookie: Option<&str>) -> Answer {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n"
        );
        if let Some(c) = cookie {
            req.push_str(&format!("Cookie: {c}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap();
        let set_cookies = lines
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.trim().to_owned())
            .collect();
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        Answer {
            status,
            set_cookies,
            body: if chunked {
                dechunk(body)
            } else {
                body.to_owned()
            },
        }
    }

    fn dechunk(mut body: &str) -> String {
        let mut out = String::new();
        while let Some((size, rest)) = body.split_once("\r\n") {
            let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
                break;
            };
            if n == 0 || rest.len() < n {
                break;
            }
            out.push_str(&rest[..n]);
            body = rest[n..].trim_start_matches("\r\n");
        }
        out
    }

    /// One Redis command; the bulk or simple string reply (`None` for nil).
    pub fn resp(port: u16, args: &[&[u8]]) -> std::io::Result<Option<Vec<u8>>> {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        s.write_all(&req)?;
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line)?;
        let line = line.trim_end();
        Ok(match line.as_bytes().first() {
            Some(b'+') | Some(b':') => Some(line.as_bytes()[1..].to_vec()),
            Some(b'$') => {
                let n: i64 = line[1..].parse().unwrap_or(-1);
                if n < 0 {
                    None
                } else {
                    let mut buf = vec![0u8; usize::try_from(n).unwrap_or(0) + 2];
                    r.read_exact(&mut buf)?;
                    buf.truncate(buf.len() - 2);
                    Some(buf)
                }
            }
            _ => None,
        })
    }

    /// The port of a `redis://127.0.0.1:PORT` URL.
    pub fn redis_port(url: &str) -> u16 {
        url.rsplit(':').next().unwrap().parse().unwrap()
    }
}
