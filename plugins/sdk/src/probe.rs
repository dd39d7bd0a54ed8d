//! TCP to the service's own published ports (needs the `net-probe` capability).

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Connect to `addr` (`host:port`) with read and write timeouts, so a server
/// that accepts but never answers cannot hang the hook.
pub fn connect(addr: &str, timeout: Duration) -> io::Result<TcpStream> {
    let addr: SocketAddr = addr.parse().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
    let stream = match TcpStream::connect_timeout(&addr, timeout) {
        Err(e) if e.kind() == io::ErrorKind::Unsupported => TcpStream::connect(addr)?,
        other => other?,
    };
    for result in [stream.set_read_timeout(Some(timeout)), stream.set_write_timeout(Some(timeout))] {
        match result {
            Err(e) if e.kind() != io::ErrorKind::Unsupported => return Err(e),
            _ => {}
        }
    }
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// [`connect`] with a 2-second timeout, the error naming the address.
pub fn tcp(addr: &str) -> Result<TcpStream, String> {
    connect(addr, Duration::from_secs(2)).map_err(|e| format!("connect {addr}: {e}"))
}

/// One `ready` answer for the container `name` and a probe of its published `port`:
/// not yet while the container is missing or its port unpublished; an error once it
/// has stopped (an `err` from `ready` is final, and waiting will not bring it back);
/// otherwise `check` decides from the `host:port`: `Ok` is ready, `Err(reason)` not yet.
pub fn ready(name: &str, port: u16, check: impl FnOnce(&str) -> Result<(), String>) -> Result<crate::Readiness, String> {
    use crate::Readiness::{NotYet, Ready};
    let info = match crate::docker::inspect(name) {
        Ok(info) => info,
        Err(e) => return Ok(NotYet(e.to_string())),
    };
    info.alive()?;
    let Some(addr) = info.published(port) else {
        return Ok(NotYet(format!("port {port} of {name} is not published yet")));
    };
    Ok(check(&addr).map_or_else(NotYet, |()| Ready))
}

/// `Ok` when `GET path` at `addr` answers 2xx; else why not.
pub fn http_ok(addr: &str, path: &str, timeout: Duration) -> Result<(), String> {
    match http_status(addr, path, timeout)? {
        200..=299 => Ok(()),
        status => Err(format!("GET {path} answered {status}")),
    }
}

/// `GET path` over HTTP/1.1 at `addr` (`host:port`); the answer's status code.
pub fn http_status(addr: &str, path: &str, timeout: Duration) -> Result<u16, String> {
    use std::io::{Read, Write};
    let mut stream = connect(addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: provisioner\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| format!("send to {addr}: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf).map_err(|e| format!("receive from {addr}: {e}"))?;
        if n == 0 {
            return Err(format!("{addr} closed the connection without answering"));
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 8192 {
            return Err(format!("{addr} sent no HTTP status line"));
        }
    }
    let text = String::from_utf8_lossy(&head);
    let line = text.lines().next().unwrap_or("");
    line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("not an HTTP answer from {addr}: {line}"))
}
