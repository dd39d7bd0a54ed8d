//! Just enough S3 over HTTP/1.1 to prove the app's key works: one `ListObjectsV2` of
//! at most one key, signed with SigV4 (as a presigned URL, which is how `rusty-s3`
//! signs: the same signature, carried in the query string instead of a header).

use std::io::{Read, Write};
use std::time::Duration;

use provisioner_plugin_sdk::probe;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reasons() {
        let body = "HTTP/1.1 403 Forbidden\r\n\r\n<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Forbidden: no read</Message></Error>";
        assert_eq!(reason(body), ": AccessDenied: Forbidden: no read");
        assert_eq!(reason("HTTP/1.1 500 Internal\r\n\r\n"), "");
    }
}
