//! A tiny HTTP/1.1 client over WASI sockets: one `GET`, the connection closed after
//! it, short timeouts, the body read whole (up to a cap) and un-chunked. Enough for
//! Prometheus's and Alertmanager's `/-/ready` and `/api/v1/alerts`.

use std::io::{Read, Write};
use std::time::Duration;

/// The most of an answer read: alerts of a development environment are a few KiB.
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// An HTTP answer: its status and body.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET path` at `addr` (`host:port`), waiting at most `timeout` to connect and for
/// each read or write.
pub fn get(addr: &str, path: &str, timeout: Duration) -> Result<Answer, String> {
    let mut stream = provisioner_plugin_sdk::probe::connect(addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: provisioner\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| format!("send to {addr}: {e}"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if raw.len() > MAX_ANSWER {
                    return Err(format!("the answer of {addr} is larger than {} MiB", MAX_ANSWER >> 20));
                }
                // A complete answer with a length needs no wait for the close.
                if let Ok(Some(answer)) = parse(&raw) {
                    return Ok(answer);
                }
            }
            Err(e) if raw.is_empty() => return Err(format!("receive from {addr}: {e}")),
            // A server that keeps the connection open after a complete answer of
            // unknown length: what came is the answer.
            Err(_) => break,
        }
    }
    if raw.is_empty() {
        return Err(format!("{addr} closed the connection without answering"));
    }
    parse_closed(&raw).map_err(|e| format!("{addr}: {e}"))
}

/// The answer in `raw` if it is complete by its own framing (`Content-Length` or a
/// final chunk); `Ok(None)` while more is needed.
pub fn parse(raw: &[u8]) -> Result<Option<Answer>, String> {
    let Some((status, headers, body)) = head(raw)? else { return Ok(None) };
    if chunked(&headers) {
        return Ok(dechunk(body)?.map(|body| Answer { status, body }));
    }
    match content_length(&headers)? {
        Some(len) if body.len() >= len => Ok(Some(Answer { status, body: body[..len].to_vec() })),
        Some(_) => Ok(None),
        // No length: the body ends with the connection, except where there is none.
        None if status == 204 || status == 304 || (100..200).contains(&status) => Ok(Some(Answer { status, body: Vec::new() })),
        None => Ok(None),
    }
}

/// The answer in `raw` once the server has closed the connection: the body runs to
/// the end unless its framing says otherwise.
pub fn parse_closed(raw: &[u8]) -> Result<Answer, String> {
    if let Some(answer) = parse(raw)? {
        return Ok(answer);
    }
    let Some((status, headers, body)) = head(raw)? else { return Err("the answer ended inside its headers".into()) };
    if chunked(&headers) || content_length(&headers)?.is_some() {
        return Err("the answer ended before its body did".into());
    }
    Ok(Answer { status, body: body.to_vec() })
}

/// A status, the headers (lower-cased names) and what follows them.
type Head<'a> = (u16, Vec<(String, String)>, &'a [u8]);

/// The status, the headers and the rest, once the head is complete.
fn head(raw: &[u8]) -> Result<Option<Head<'_>>, String> {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if raw.len() > 64 * 1024 { Err("no end of the HTTP headers".into()) } else { Ok(None) };
    };
    let text = String::from_utf8_lossy(&raw[..end]);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = match status_line.split_whitespace().collect::<Vec<_>>().as_slice() {
        [version, code, ..] if version.starts_with("HTTP/") => code.parse::<u16>().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("not an HTTP answer: {}", status_line.chars().take(80).collect::<String>()))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Ok(Some((status, headers, &raw[end + 4..])))
}

fn chunked(headers: &[(String, String)]) -> bool {
    headers.iter().any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"))
}

fn content_length(headers: &[(String, String)]) -> Result<Option<usize>, String> {
    match headers.iter().find(|(n, _)| n == "content-length") {
        None => Ok(None),
        Some((_, v)) => v.parse().map(Some).map_err(|_| format!("bad Content-Length `{v}`")),
    }
}

/// A chunked body decoded, or `None` while its last chunk has not come.
fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else { return Ok(None) };
        let size_line = String::from_utf8_lossy(&rest[..eol]);
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| format!("bad chunk size `{size_hex}`"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(Some(body));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing() {
        let fixed = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello";
        assert_eq!(parse(fixed).unwrap(), Some(Answer { status: 200, body: b"hello".to_vec() }));
        assert_eq!(parse(&fixed[..fixed.len() - 1]).unwrap(), None, "a body still coming");
        assert_eq!(parse(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap(), None, "headers still coming");

        let chunks = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n6;x=y\r\npedia \r\n0\r\n\r\n";
        assert_eq!(parse(chunks).unwrap().unwrap().body, b"Wikipedia ");
        assert_eq!(parse(&chunks[..40]).unwrap(), None);

        let unframed = b"HTTP/1.0 503 Service Unavailable\r\n\r\nService Unavailable";
        assert_eq!(parse(unframed).unwrap(), None, "ends with the connection");
        assert_eq!(parse_closed(unframed).unwrap(), Answer { status: 503, body: b"Service Unavailable".to_vec() });
        assert!(parse_closed(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
        assert!(parse_closed(b"SSH-2.0-OpenSSH\r\n\r\n").unwrap_err().starts_with("not an HTTP answer"));
    }

    #[test]
    fn a_real_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).unwrap();
            assert!(buf[..n].starts_with(b"GET /-/ready HTTP/1.1\r\n"));
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\nPrometheus Server is Ready.\n\n\n").unwrap();
            // Kept open: the length ends the answer.
            std::thread::sleep(Duration::from_secs(5));
        });
        let answer = get(&addr, "/-/ready", Duration::from_secs(2)).unwrap();
        assert_eq!((answer.status, answer.text().trim()), (200, "Prometheus Server is Ready."));
    }
}
