//! Just enough S3 over HTTP/1.1: one `ListObjectsV2` of at most one key to prove the
//! app's key works, and for backup and restore paged listings, `GetObject`,
//! `PutObject` and `DeleteObject` with bodies streamed, never held whole. Every
//! request is signed with SigV4 as a presigned URL (how `rusty-s3` signs: the same
//! signature, carried in the query string instead of a header), one request per
//! connection (`Connection: close`).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use provisioner_plugin_sdk::probe;
use rusty_s3::actions::ListObjectsV2;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use sha2::{Digest, Sha256};

/// A response bigger than this is not an answer to a one-key listing.
const MAX_RESPONSE: usize = 64 * 1024;

/// A short fingerprint of a secret, safe to keep in a marker file.
pub fn digest(secret: &str) -> String {
    hex::encode(&Sha256::digest(secret.as_bytes())[..8])
}

/// List at most one object of `bucket` at `addr` (`host:port`) as the key
/// `key_id`/`secret`; `Ok` when the server answers 200.
pub fn list_one_object(addr: &str, region: &str, bucket: &str, key_id: &str, secret: &str) -> Result<(), String> {
    let endpoint = url::Url::parse(&format!("http://{addr}")).map_err(|e| format!("endpoint http://{addr}: {e}"))?;
    // Path style: the endpoint is an IP address, so the bucket cannot be a host name.
    let target = Bucket::new(endpoint, UrlStyle::Path, bucket.to_string(), region.to_string())
        .map_err(|e| format!("bucket {bucket}: {e}"))?;
    let credentials = Credentials::new(key_id, secret);
    let mut action = target.list_objects_v2(Some(&credentials));
    action.query_mut().insert("max-keys", "1");
    let url = action.sign(Duration::from_secs(60));
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    };

    let mut stream = probe::tcp(addr)?;
    // The Host header must be the one the signature covers: the endpoint's `host:port`.
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| format!("send: {e}"))?;

    // `Connection: close`: the response ends where the stream does.
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).map_err(|e| format!("receive: {e}"))?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..n]);
        if response.len() > MAX_RESPONSE {
            return Err(format!("response of more than {MAX_RESPONSE} bytes"));
        }
    }
    let text = String::from_utf8_lossy(&response);
    let status_line = text.lines().next().unwrap_or_default();
    let status = match status_line.split_whitespace().collect::<Vec<_>>().as_slice() {
        [version, code, ..] if version.starts_with("HTTP/") => code.parse::<u16>().ok(),
        _ => None,
    };
    match status {
        Some(200) => Ok(()),
        Some(code) => Err(format!("ListObjectsV2 on {bucket}: HTTP {code}{}", reason(&text))),
        None if response.is_empty() => Err("the server closed the connection".into()),
        None => Err(format!("not an HTTP response: {}", status_line.chars().take(80).collect::<String>())),
    }
}

/// `: Code: Message` of an S3 error body, or nothing when the body has none.
fn reason(response: &str) -> String {
    let element = |name: &str| {
        let start = response.find(&format!("<{name}>"))? + name.len() + 2;
        let end = start + response[start..].find(&format!("</{name}>"))?;
        Some(response[start..end].trim().chars().take(160).collect::<String>())
    };
    match (element("Code"), element("Message")) {
        (Some(code), Some(message)) => format!(": {code}: {message}"),
        (Some(code), None) => format!(": {code}"),
        (None, Some(message)) => format!(": {message}"),
        (None, None) => String::new(),
    }
}

/// Bigger than any response head Garage sends.
const MAX_HEAD: usize = 64 * 1024;
/// A listing page of 1000 keys of at most 1024 bytes, percent-encoded, fits well.
const MAX_LISTING: usize = 16 * 1024 * 1024;
/// How long one read or write on the socket may stall (a large PUT is answered once
/// the server has stored it).
const IO_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a presigned URL stays valid: each is used at once.
const URL_TTL: Duration = Duration::from_secs(600);

/// The head of an HTTP response: status and headers (names lower-cased).
#[derive(Debug, PartialEq)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header `name` (lower-case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// `Content-Length`, if given (and valid).
    pub fn content_length(&self) -> Result<Option<u64>, String> {
        match self.get("content-length") {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| format!("invalid Content-Length `{v}`")),
        }
    }

    /// Whether the body is sent with `Transfer-Encoding: chunked`.
    pub fn chunked(&self) -> bool {
        self.get("transfer-encoding").is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("chunked")))
    }
}

/// Read a response head (status line and headers, up to the empty line) from `r`,
/// leaving `r` at the first byte of the body.
pub fn read_head<R: BufRead>(r: &mut R) -> Result<Head, String> {
    let mut lines: Vec<String> = Vec::new();
    let mut total = 0;
    loop {
        let mut line = Vec::new();
        let n = r.take((MAX_HEAD - total + 1) as u64).read_until(b'\n', &mut line).map_err(|e| format!("receive: {e}"))?;
        total += n;
        if n == 0 {
            return Err(if lines.is_empty() { "the server closed the connection without answering".into() } else { "the server closed the connection mid-answer".into() });
        }
        if total > MAX_HEAD {
            return Err(format!("response head of more than {MAX_HEAD} bytes"));
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        if line.is_empty() {
            if lines.is_empty() {
                continue; // Tolerate stray empty lines before the status line.
            }
            break;
        }
        lines.push(String::from_utf8_lossy(&line).into_owned());
    }
    parse_head(&lines)
}

/// The status line and header lines of a response head.
fn parse_head(lines: &[String]) -> Result<Head, String> {
    let status_line = lines.first().map(String::as_str).unwrap_or_default();
    let status = match status_line.split_whitespace().collect::<Vec<_>>().as_slice() {
        [version, code, ..] if version.starts_with("HTTP/") => code.parse::<u16>().ok(),
        _ => None,
    };
    let status = status.ok_or_else(|| format!("not an HTTP response: {}", status_line.chars().take(80).collect::<String>()))?;
    let mut headers = Vec::new();
    for line in &lines[1..] {
        let (name, value) = line.split_once(':').ok_or_else(|| format!("malformed header line `{}`", line.chars().take(80).collect::<String>()))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(Head { status, headers })
}

enum Framing {
    /// This many bytes left.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked(ChunkState),
    /// Until the connection closes.
    Close,
}

#[derive(Clone, Copy)]
enum ChunkState {
    /// Expecting a chunk-size line.
    Size,
    /// This many bytes of chunk data left.
    Data(u64),
    /// Expecting the CRLF that ends a chunk's data.
    DataEnd,
    Done,
}

/// A response body, framed as its head says: `Content-Length`, chunked, or up to the
/// end of the connection.
pub struct Body<R> {
    inner: R,
    framing: Framing,
}

impl<R: BufRead> Body<R> {
    pub fn new(inner: R, head: &Head) -> Result<Self, String> {
        let framing = if head.chunked() {
            Framing::Chunked(ChunkState::Size)
        } else {
            match head.content_length()? {
                Some(n) => Framing::Length(n),
                None if head.status == 204 || head.status == 304 => Framing::Length(0),
                None => Framing::Close,
            }
        };
        Ok(Body { inner, framing })
    }

    /// The whole body, refused beyond `max` bytes.
    pub fn read_all(&mut self, max: usize) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        self.take(max as u64 + 1).read_to_end(&mut out).map_err(|e| format!("receive: {e}"))?;
        if out.len() > max {
            return Err(format!("response body of more than {max} bytes"));
        }
        Ok(out)
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        self.inner.by_ref().take(4096).read_until(b'\n', &mut line)?;
        if !line.ends_with(b"\n") {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "chunked body cut short"));
        }
        Ok(String::from_utf8_lossy(&line).trim().to_string())
    }
}

fn cut_short() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection before the end of the body")
}

impl<R: BufRead> Read for Body<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.framing {
                Framing::Close => return self.inner.read(buf),
                Framing::Length(0) => return Ok(0),
                Framing::Length(left) => {
                    let max = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = self.inner.read(&mut buf[..max])?;
                    if n == 0 {
                        return Err(cut_short());
                    }
                    self.framing = Framing::Length(left - n as u64);
                    return Ok(n);
                }
                Framing::Chunked(ChunkState::Done) => return Ok(0),
                Framing::Chunked(ChunkState::Size) => {
                    let line = self.line()?;
                    let size = line.split(';').next().unwrap_or_default().trim();
                    let size = u64::from_str_radix(size, 16)
                        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad chunk size line `{line}`")))?;
                    if size == 0 {
                        // Trailers, if any, up to the empty line.
                        while !self.line()?.is_empty() {}
                        self.framing = Framing::Chunked(ChunkState::Done);
                    } else {
                        self.framing = Framing::Chunked(ChunkState::Data(size));
                    }
                }
                Framing::Chunked(ChunkState::DataEnd) => {
                    if !self.line()?.is_empty() {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, "chunk data longer than its size"));
                    }
                    self.framing = Framing::Chunked(ChunkState::Size);
                }
                Framing::Chunked(ChunkState::Data(left)) => {
                    let max = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = self.inner.read(&mut buf[..max])?;
                    if n == 0 {
                        return Err(cut_short());
                    }
                    let left = left - n as u64;
                    self.framing = Framing::Chunked(if left == 0 { ChunkState::DataEnd } else { ChunkState::Data(left) });
                    return Ok(n);
                }
            }
        }
    }
}

/// One object of a listing.
#[derive(Debug, PartialEq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
}

/// A `ListObjectsV2` answer: its objects and the token of the next page, if any.
pub fn parse_listing(xml: &str) -> Result<(Vec<Listed>, Option<String>), String> {
    let parsed = ListObjectsV2::parse_response(xml).map_err(|e| format!("reading the listing: {e}"))?;
    let objects = parsed.contents.into_iter().map(|c| Listed { key: c.key, size: c.size.unwrap_or(0) }).collect();
    Ok((objects, parsed.next_continuation_token.filter(|t| !t.is_empty())))
}

/// What a GET answered, with its body to read.
pub struct Object {
    pub head: Head,
    /// From `Content-Length`.
    pub size: u64,
    pub body: Body<BufReader<TcpStream>>,
}

/// The app's view of the S3 API at `addr` (`host:port`, the published port).
pub struct Client {
    addr: String,
    endpoint: url::Url,
    region: String,
    credentials: Credentials,
}

impl Client {
    pub fn new(addr: &str, region: &str, key_id: &str, secret: &str) -> Result<Client, String> {
        let endpoint = url::Url::parse(&format!("http://{addr}")).map_err(|e| format!("endpoint http://{addr}: {e}"))?;
        Ok(Client { addr: addr.to_string(), endpoint, region: region.to_string(), credentials: Credentials::new(key_id, secret) })
    }

    fn bucket(&self, name: &str) -> Result<Bucket, String> {
        // Path style: the endpoint is an IP address, so the bucket cannot be a host name.
        Bucket::new(self.endpoint.clone(), UrlStyle::Path, name.to_string(), self.region.clone()).map_err(|e| format!("bucket {name}: {e}"))
    }

    /// Send a request head for the presigned `url` (plus `headers`, which must be
    /// the ones signed), announcing a body of `length` bytes when there is one.
    fn send(&self, method: &str, url: &url::Url, headers: &[(&str, &str)], length: Option<u64>) -> Result<TcpStream, String> {
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        let addr = &self.addr;
        // The Host header must be the one the signature covers: the endpoint's `host:port`.
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(length) = length {
            request.push_str(&format!("Content-Length: {length}\r\n"));
        }
        request.push_str("\r\n");
        let mut stream = probe::connect(addr, IO_TIMEOUT).map_err(|e| format!("connect {addr}: {e}"))?;
        stream.write_all(request.as_bytes()).map_err(|e| format!("send: {e}"))?;
        Ok(stream)
    }

    /// One page of `bucket`'s objects from `token` (the first page without one).
    pub fn list_page(&self, bucket: &str, token: Option<&str>) -> Result<(Vec<Listed>, Option<String>), String> {
        let target = self.bucket(bucket)?;
        let mut action = target.list_objects_v2(Some(&self.credentials));
        if let Some(token) = token {
            action.with_continuation_token(token);
        }
        let url = action.sign(URL_TTL);
        let stream = self.send("GET", &url, &[], None)?;
        let mut reader = BufReader::new(stream);
        let head = read_head(&mut reader)?;
        let mut body = Body::new(reader, &head)?;
        let bytes = body.read_all(MAX_LISTING)?;
        let text = String::from_utf8_lossy(&bytes);
        if head.status != 200 {
            return Err(format!("ListObjectsV2 on {bucket}: HTTP {}{}", head.status, reason(&text)));
        }
        parse_listing(&text)
    }

    /// Every object of `bucket`, page by page, to `each`.
    pub fn list_all(&self, bucket: &str, mut each: impl FnMut(Vec<Listed>) -> Result<(), String>) -> Result<(), String> {
        let mut token: Option<String> = None;
        loop {
            let (objects, next) = self.list_page(bucket, token.as_deref())?;
            each(objects)?;
            match next {
                Some(next) if Some(&next) != token.as_ref() => token = Some(next),
                Some(_) => return Err(format!("ListObjectsV2 on {bucket}: the server repeated its continuation token")),
                None => return Ok(()),
            }
        }
    }

    /// `GET` an object: its head and body, or `None` when it is gone (404).
    pub fn get(&self, bucket: &str, key: &str) -> Result<Option<Object>, String> {
        let target = self.bucket(bucket)?;
        let url = target.get_object(Some(&self.credentials), key).sign(URL_TTL);
        let stream = self.send("GET", &url, &[], None)?;
        let mut reader = BufReader::with_capacity(256 * 1024, stream);
        let head = read_head(&mut reader)?;
        let mut body = Body::new(reader, &head)?;
        match head.status {
            200 => {}
            404 => return Ok(None),
            status => {
                let text = String::from_utf8_lossy(&body.read_all(MAX_HEAD).unwrap_or_default()).into_owned();
                return Err(format!("GET {bucket}/{key}: HTTP {status}{}", reason(&text)));
            }
        }
        // The size goes into the record before the bytes: it must be known up front.
        let size = head
            .content_length()?
            .ok_or_else(|| format!("GET {bucket}/{key}: the server answered without Content-Length (chunked: {}), which a backup record needs", head.chunked()))?;
        if head.chunked() {
            return Err(format!("GET {bucket}/{key}: the server answered both chunked and with a Content-Length"));
        }
        Ok(Some(Object { head, size, body }))
    }

    /// `PUT` an object of `size` bytes read from `body`, with `headers` (lower-case
    /// names: content type, user metadata …), which are signed.
    pub fn put(&self, bucket: &str, key: &str, headers: &[(String, String)], size: u64, body: &mut impl Read) -> Result<(), String> {
        let target = self.bucket(bucket)?;
        let mut action = target.put_object(Some(&self.credentials), key);
        for (name, value) in headers {
            action.headers_mut().insert(name.clone(), value.clone());
        }
        let url = action.sign(URL_TTL);
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let mut stream = self.send("PUT", &url, &pairs, Some(size))?;

        let mut buf = vec![0u8; 1024 * 1024];
        let mut left = size;
        let mut sent = Ok(());
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = body.read(&mut buf[..want]).map_err(|e| format!("reading {bucket}/{key} from the backup: {e}"))?;
            if n == 0 {
                return Err(format!("{bucket}/{key}: the backup ends {left} bytes before the object does"));
            }
            if let Err(e) = stream.write_all(&buf[..n]) {
                // The server may have answered (and closed) early: its answer says why.
                sent = Err(format!("send: {e}"));
                break;
            }
            left -= n as u64;
        }
        drop(buf);
        let mut reader = BufReader::new(stream);
        let head = match read_head(&mut reader) {
            Ok(head) => head,
            Err(e) => return Err(format!("PUT {bucket}/{key}: {}", sent.err().unwrap_or(e))),
        };
        let text = String::from_utf8_lossy(&Body::new(reader, &head)?.read_all(MAX_HEAD).unwrap_or_default()).into_owned();
        match head.status {
            200 if sent.is_ok() => Ok(()),
            200 => Err(format!("PUT {bucket}/{key}: {}", sent.err().unwrap_or_default())),
            status => Err(format!("PUT {bucket}/{key}: HTTP {status}{}", reason(&text))),
        }
    }

    /// `DELETE` an object; gone already is fine.
    pub fn delete(&self, bucket: &str, key: &str) -> Result<(), String> {
        let target = self.bucket(bucket)?;
        let url = target.delete_object(Some(&self.credentials), key).sign(URL_TTL);
        let stream = self.send("DELETE", &url, &[], None)?;
        let mut reader = BufReader::new(stream);
        let head = read_head(&mut reader)?;
        let text = String::from_utf8_lossy(&Body::new(reader, &head)?.read_all(MAX_HEAD).unwrap_or_default()).into_owned();
        match head.status {
            200 | 204 | 404 => Ok(()),
            status => Err(format!("DELETE {bucket}/{key}: HTTP {status}{}", reason(&text))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reasons() {
        let body = "HTTP/1.1 403 Forbidden\r\n\r\n<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Forbidden: no read</Message></Error>";
        assert_eq!(reason(body), ": AccessDenied: Forbidden: no read");
        assert_eq!(reason("HTTP/1.1 500 Internal\r\n\r\n"), "");
    }

    fn response(bytes: &[u8]) -> (Head, Vec<u8>) {
        let mut reader = io::Cursor::new(bytes.to_vec());
        let head = read_head(&mut reader).unwrap();
        let mut body = Body::new(reader, &head).unwrap();
        let mut out = Vec::new();
        body.read_to_end(&mut out).unwrap();
        (head, out)
    }

    #[test]
    fn response_heads() {
        let (head, body) = response(
            b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\ncontent-length: 5\r\nX-Amz-Meta-Owner:  ann \r\nx-amz-meta-colour: blue: dark\r\n\r\nhelloEXTRA",
        );
        assert_eq!(head.status, 200);
        assert_eq!(head.get("content-type"), Some("image/png"));
        assert_eq!(head.get("x-amz-meta-owner"), Some("ann"));
        assert_eq!(head.get("x-amz-meta-colour"), Some("blue: dark"));
        assert_eq!(head.content_length(), Ok(Some(5)));
        assert!(!head.chunked());
        assert_eq!(body, b"hello");

        let (head, body) = response(b"HTTP/1.1 404 Not Found\r\n\r\nuntil close");
        assert_eq!((head.status, head.content_length()), (404, Ok(None)));
        assert_eq!(body, b"until close");

        let mut reader = io::Cursor::new(b"garbage\r\n\r\n".to_vec());
        assert!(read_head(&mut reader).unwrap_err().contains("not an HTTP response"));
        let mut reader = io::Cursor::new(b"HTTP/1.1 200 OK\r\nContent-Le".to_vec());
        assert!(read_head(&mut reader).is_err());
        let mut reader = io::Cursor::new(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n".to_vec());
        assert!(read_head(&mut reader).unwrap().content_length().is_err());
    }

    #[test]
    fn chunked_bodies() {
        let (head, body) = response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT");
        assert!(head.chunked());
        assert_eq!(body, b"hello, world");

        // Read in tiny pieces too.
        let mut reader = io::Cursor::new(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n".to_vec());
        let head = read_head(&mut reader).unwrap();
        let mut body = Body::new(reader, &head).unwrap();
        let mut out = Vec::new();
        let mut byte = [0u8; 3];
        loop {
            let n = body.read(&mut byte).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&byte[..n]);
        }
        assert_eq!(out, b"0123456789");

        // Cut short: an error, never a silently short body.
        for cut in [&b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"[..], b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nabc"] {
            let mut reader = io::Cursor::new(cut.to_vec());
            let head = read_head(&mut reader).unwrap();
            let mut out = Vec::new();
            assert!(Body::new(reader, &head).unwrap().read_to_end(&mut out).is_err());
        }
    }

    #[test]
    fn listings() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>attachments</Name><Prefix></Prefix><EncodingType>url</EncodingType><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>c29tZQ</NextContinuationToken><Contents><Key>a%20b%2Bc%26d%2F%C3%A9</Key><LastModified>2025-01-01T00:00:00.000Z</LastModified><ETag>&quot;x&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>big.bin</Key><LastModified>2025-01-01T00:00:00.000Z</LastModified><ETag>&quot;y&quot;</ETag><Size>20971520</Size><StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>"#;
        let (objects, next) = parse_listing(xml).unwrap();
        assert_eq!(objects, vec![Listed { key: "a b+c&d/é".into(), size: 12 }, Listed { key: "big.bin".into(), size: 20971520 }]);
        assert_eq!(next.as_deref(), Some("c29tZQ"));

        let last = r#"<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>attachments</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>"#;
        assert_eq!(parse_listing(last).unwrap(), (vec![], None));
        assert!(parse_listing("<html>").is_err());
    }
}
