//! Backup and restore over the S3 API, with the app's key: every object of the
//! configured buckets, streamed in and out in chunks (a plugin has 64 MiB of memory;
//! an object may be far bigger).
//!
//! Part `objects` is a sequence of records, one per object, each
//! `[u32 big-endian header length][header: JSON][the object's bytes]`, the header
//! `{"bucket","key","size","content_type","metadata":{name: value}}` (and `headers`,
//! the other stored headers such as `cache-control`, when the object has any);
//! `metadata` names are the `x-amz-meta-` headers' without that prefix, lower-case.
//! Part `index.json` counts the objects and bytes of each bucket, for a reader of the
//! archive (restore does not need it).

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read};

use provisioner_plugin_sdk::*;
use serde::{Deserialize, Serialize};

use crate::wire::Client;

pub const OBJECTS_PART: &str = "objects";
pub const INDEX_PART: &str = "index.json";
/// What one `archive::append` carries at most.
const APPEND_CHUNK: usize = 1024 * 1024;
/// What one `archive::read` asks for (its limit).
const READ_CHUNK: u32 = 4 * 1024 * 1024;
/// A record header bigger than this is not one (keys are ≤ 1 KiB, metadata ≤ 2 KiB).
const MAX_HEADER: u32 = 1024 * 1024;
const META_PREFIX: &str = "x-amz-meta-";
/// Headers S3 stores with an object and gives back on GET, besides the content type.
const KEPT_HEADERS: [&str; 5] = ["cache-control", "content-disposition", "content-encoding", "content-language", "expires"];

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
pub struct RecordHeader {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub content_type: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl RecordHeader {
    /// The record's start: the header's length (u32, big-endian) and the header.
    pub fn encode(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("a record header serialises");
        let mut out = (json.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&json);
        out
    }

    /// The next record's header from `r`, which is then at the object's bytes;
    /// `None` at the clean end of the part.
    pub fn decode(r: &mut impl Read) -> Result<Option<RecordHeader>, String> {
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            let n = r.read(&mut len[got..]).map_err(|e| format!("reading the backup: {e}"))?;
            if n == 0 {
                return if got == 0 { Ok(None) } else { Err("the backup ends inside a record's length".into()) };
            }
            got += n;
        }
        let len = u32::from_be_bytes(len);
        if len == 0 || len > MAX_HEADER {
            return Err(format!("a record header of {len} bytes: part `{OBJECTS_PART}` is not a sequence of records"));
        }
        let mut json = vec![0u8; len as usize];
        r.read_exact(&mut json).map_err(|e| format!("reading a record header: {e}"))?;
        serde_json::from_slice(&json).map(Some).map_err(|e| format!("a record header that does not parse: {e}"))
    }

    /// The signed headers of the object's `PUT`.
    pub fn put_headers(&self) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        if let Some(ct) = &self.content_type {
            out.push(("content-type".to_string(), ct.clone()));
        }
        for (name, value) in &self.headers {
            if KEPT_HEADERS.contains(&name.as_str()) {
                out.push((name.clone(), value.clone()));
            }
        }
        for (name, value) in &self.metadata {
            out.push((format!("{META_PREFIX}{name}"), value.clone()));
        }
        for (name, value) in &out {
            let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.!#$%&'*+^`|~".contains(&b));
            if !name_ok || value.chars().any(|c| c.is_control()) {
                return Err(format!("{}/{}: header `{name}` cannot be sent over HTTP", self.bucket, self.key));
            }
        }
        Ok(out)
    }

    /// The header of the object `bucket`/`key` as a GET answered it.
    pub fn from_response(bucket: &str, key: &str, size: u64, head: &crate::wire::Head) -> RecordHeader {
        let mut metadata = BTreeMap::new();
        let mut headers = BTreeMap::new();
        for (name, value) in &head.headers {
            if let Some(meta) = name.strip_prefix(META_PREFIX) {
                // Repeated headers are joined, as HTTP reads them.
                metadata.entry(meta.to_string()).and_modify(|v: &mut String| {
                    v.push(',');
                    v.push_str(value)
                }).or_insert_with(|| value.clone());
            } else if KEPT_HEADERS.contains(&name.as_str()) {
                headers.insert(name.clone(), value.clone());
            }
        }
        RecordHeader {
            bucket: bucket.to_string(),
            key: key.to_string(),
            size,
            content_type: head.get("content-type").map(str::to_string),
            metadata,
            headers,
        }
    }
}

/// Fills `buf` and hands it to `flush` whenever it holds `APPEND_CHUNK` bytes.
struct Appender<F: FnMut(&[u8]) -> Result<(), String>> {
    buf: Vec<u8>,
    flush: F,
}

impl<F: FnMut(&[u8]) -> Result<(), String>> Appender<F> {
    fn new(flush: F) -> Self {
        Appender { buf: Vec::with_capacity(APPEND_CHUNK), flush }
    }

    fn push(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        while !bytes.is_empty() {
            let n = (APPEND_CHUNK - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.buf.len() == APPEND_CHUNK {
                self.finish()?;
            }
        }
        Ok(())
    }

    /// Copy exactly `size` bytes of `from`.
    fn copy(&mut self, from: &mut impl Read, size: u64) -> Result<(), String> {
        let mut left = size;
        while left > 0 {
            if self.buf.len() == APPEND_CHUNK {
                self.finish()?;
            }
            let start = self.buf.len();
            let room = (APPEND_CHUNK - start).min(usize::try_from(left).unwrap_or(usize::MAX));
            self.buf.resize(start + room, 0);
            let n = match from.read(&mut self.buf[start..]) {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(start);
                    return Err(format!("receive: {e}"));
                }
            };
            self.buf.truncate(start + n);
            if n == 0 {
                return Err(format!("the body ended {left} bytes early"));
            }
            left -= n as u64;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), String> {
        if !self.buf.is_empty() {
            (self.flush)(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

#[derive(Serialize, Default)]
struct BucketIndex {
    objects: u64,
    bytes: u64,
}

/// Every object of `buckets` into part `objects`, and `index.json`; how many
/// objects and bytes, and how many listed objects were gone by the time of their GET.
pub fn backup(client: &Client, buckets: &[String]) -> Result<(u64, u64, u64), String> {
    // Created even when there is nothing to write, so that a restore finds it.
    archive::append(OBJECTS_PART, &[])?;
    let mut out = Appender::new(|chunk: &[u8]| archive::append(OBJECTS_PART, chunk).map_err(|e| e.to_string()));
    let mut index: BTreeMap<String, BucketIndex> = BTreeMap::new();
    let mut vanished = 0;
    for bucket in buckets {
        let entry = index.entry(bucket.clone()).or_default();
        client.list_all(bucket, |page| {
            for listed in page {
                progress(&format!("saving {bucket}: {} objects, {} so far", entry.objects, bytes(entry.bytes)));
                let Some(mut object) = client.get(bucket, &listed.key)? else {
                    // Deleted since the listing.
                    vanished += 1;
                    continue;
                };
                let header = RecordHeader::from_response(bucket, &listed.key, object.size, &object.head);
                out.push(&header.encode())?;
                out.copy(&mut object.body, object.size).map_err(|e| format!("GET {bucket}/{}: {e}", listed.key))?;
                entry.objects += 1;
                entry.bytes += object.size;
            }
            Ok(())
        })?;
    }
    out.finish()?;
    let json = serde_json::to_vec_pretty(&index).expect("the index serialises");
    archive::append(INDEX_PART, &json)?;
    let objects = index.values().map(|b| b.objects).sum();
    let total = index.values().map(|b| b.bytes).sum();
    Ok((objects, total, vanished))
}

/// How many objects and bytes `buckets` hold.
pub fn count(client: &Client, buckets: &[String]) -> Result<(u64, u64), String> {
    let (mut objects, mut total) = (0u64, 0u64);
    for bucket in buckets {
        client.list_all(bucket, |page| {
            objects += page.len() as u64;
            total += page.iter().map(|o| o.size).sum::<u64>();
            Ok(())
        })?;
    }
    Ok((objects, total))
}

/// A part of the archive as a `Read`, fetched `READ_CHUNK` bytes at a time.
pub struct PartReader<F: FnMut(u64, u32) -> Result<Vec<u8>, String>> {
    fetch: F,
    offset: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl<F: FnMut(u64, u32) -> Result<Vec<u8>, String>> PartReader<F> {
    pub fn new(fetch: F) -> Self {
        PartReader { fetch, offset: 0, buf: Vec::new(), pos: 0 }
    }
}

impl<F: FnMut(u64, u32) -> Result<Vec<u8>, String>> Read for PartReader<F> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            // Drop the old chunk before fetching the next: one in memory at a time.
            self.buf = Vec::new();
            self.buf = (self.fetch)(self.offset, READ_CHUNK).map_err(io::Error::other)?;
            self.offset += self.buf.len() as u64;
            self.pos = 0;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Skip `n` bytes of `r`.
fn skip(r: &mut impl Read, n: u64) -> Result<(), String> {
    let copied = io::copy(&mut r.take(n), &mut io::sink()).map_err(|e| format!("reading the backup: {e}"))?;
    if copied < n {
        return Err("the backup ends inside an object".into());
    }
    Ok(())
}

/// What a restore did.
pub struct Restored {
    pub objects: u64,
    pub bytes: u64,
    /// Objects of buckets this service does not configure, left out.
    pub skipped: u64,
    /// Objects the buckets held that the backup does not: deleted.
    pub deleted: u64,
}

/// Put every object of part `objects` into `buckets`, then delete the objects the
/// buckets hold that the backup does not: the buckets end up holding what the backup
/// holds.
pub fn restore(client: &Client, buckets: &[String]) -> Result<Restored, String> {
    if !archive::parts()?.iter().any(|p| p.name == OBJECTS_PART) {
        return Err(format!("the backup has no part `{OBJECTS_PART}` for this service"));
    }
    let mut reader = PartReader::new(|offset, max| archive::read(OBJECTS_PART, offset, max).map_err(|e| e.to_string()));
    let mut restored: BTreeMap<&str, HashSet<String>> = buckets.iter().map(|b| (b.as_str(), HashSet::new())).collect();
    let mut done = Restored { objects: 0, bytes: 0, skipped: 0, deleted: 0 };
    while let Some(header) = RecordHeader::decode(&mut reader)? {
        let Some(keys) = restored.get_mut(header.bucket.as_str()) else {
            warn(&format!("{}/{}: bucket `{}` is not configured here; object skipped", header.bucket, header.key, header.bucket));
            done.skipped += 1;
            skip(&mut reader, header.size)?;
            continue;
        };
        progress(&format!("restoring objects: {} done, {}", done.objects, bytes(done.bytes)));
        let headers = header.put_headers()?;
        let mut body = (&mut reader).take(header.size);
        client.put(&header.bucket, &header.key, &headers, header.size, &mut body)?;
        keys.insert(header.key);
        done.objects += 1;
        done.bytes += header.size;
    }
    for (bucket, keys) in &restored {
        client.list_all(bucket, |page| {
            for listed in page.into_iter().filter(|o| !keys.contains(&o.key)) {
                progress(&format!("deleting {bucket}/{} (not in the backup)", listed.key));
                client.delete(bucket, &listed.key)?;
                done.deleted += 1;
            }
            Ok(())
        })?;
    }
    Ok(done)
}

/// `12.3 MiB`, `512 bytes`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(key: &str, size: u64) -> RecordHeader {
        RecordHeader {
            bucket: "attachments".into(),
            key: key.into(),
            size,
            content_type: Some("text/plain".into()),
            metadata: BTreeMap::from([("owner".into(), "ann".into())]),
            headers: BTreeMap::new(),
        }
    }

    #[test]
    fn records_round_trip_through_small_reads() {
        let records = [(header("a b/ü?&%2F", 5), b"hello".to_vec()), (header("empty", 0), vec![]), (header("x", 3), b"xyz".to_vec())];
        let mut part = Vec::new();
        for (h, body) in &records {
            part.extend_from_slice(&h.encode());
            part.extend_from_slice(body);
        }
        // The exact layout: length, JSON, bytes.
        let json = serde_json::to_vec(&records[0].0).unwrap();
        assert_eq!(&part[..4], &(json.len() as u32).to_be_bytes());
        assert_eq!(&part[4..4 + json.len()], &json[..]);
        assert_eq!(&part[4 + json.len()..9 + json.len()], b"hello");
        let text = String::from_utf8(json).unwrap();
        assert!(text.contains(r#""content_type":"text/plain""#) && text.contains(r#""metadata":{"owner":"ann"}"#) && !text.contains("headers"), "{text}");

        // Fetched 7 bytes at a time, as `archive::read` would in 4 MiB chunks.
        let mut reader = PartReader::new(|offset, _max| {
            let start = (offset as usize).min(part.len());
            Ok(part[start..(start + 7).min(part.len())].to_vec())
        });
        for (h, body) in &records {
            let got = RecordHeader::decode(&mut reader).unwrap().unwrap();
            assert_eq!(&got, h);
            let mut bytes = Vec::new();
            (&mut reader).take(got.size).read_to_end(&mut bytes).unwrap();
            assert_eq!(&bytes, body);
        }
        assert_eq!(RecordHeader::decode(&mut reader).unwrap(), None);
    }

    #[test]
    fn damaged_records_are_refused() {
        assert!(RecordHeader::decode(&mut &[0u8, 0][..]).unwrap_err().contains("inside a record's length"));
        assert!(RecordHeader::decode(&mut &[0xffu8, 0, 0, 0][..]).is_err());
        assert!(RecordHeader::decode(&mut &[0u8, 0, 0, 9, b'{'][..]).is_err());
        let mut bad = 4u32.to_be_bytes().to_vec();
        bad.extend_from_slice(b"null");
        assert!(RecordHeader::decode(&mut &bad[..]).is_err());
        // A record written without `metadata` (older or hand-made) still reads.
        let json = br#"{"bucket":"b","key":"k","size":1,"content_type":null}"#;
        let mut part = (json.len() as u32).to_be_bytes().to_vec();
        part.extend_from_slice(json);
        let h = RecordHeader::decode(&mut &part[..]).unwrap().unwrap();
        assert!(h.metadata.is_empty() && h.content_type.is_none());
    }

    #[test]
    fn headers_from_a_get_and_for_a_put() {
        let head = crate::wire::Head {
            status: 200,
            headers: vec![
                ("content-type".into(), "image/png".into()),
                ("content-length".into(), "3".into()),
                ("etag".into(), "\"abc\"".into()),
                ("x-amz-meta-owner".into(), "ann".into()),
                ("x-amz-meta-tags".into(), "a".into()),
                ("x-amz-meta-tags".into(), "b".into()),
                ("cache-control".into(), "no-cache".into()),
            ],
        };
        let h = RecordHeader::from_response("attachments", "k", 3, &head);
        assert_eq!(h.content_type.as_deref(), Some("image/png"));
        assert_eq!(h.metadata, BTreeMap::from([("owner".into(), "ann".into()), ("tags".into(), "a,b".into())]));
        assert_eq!(h.headers, BTreeMap::from([("cache-control".into(), "no-cache".into())]));
        let put = h.put_headers().unwrap();
        let names: Vec<&str> = put.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["content-type", "cache-control", "x-amz-meta-owner", "x-amz-meta-tags"]);

        let mut evil = h.clone();
        evil.metadata.insert("x".into(), "a\r\nhost: evil".into());
        assert!(evil.put_headers().is_err());
        let mut evil = h;
        evil.metadata.insert("a b".into(), "v".into());
        assert!(evil.put_headers().is_err());
    }

    #[test]
    fn appends_in_chunks_of_at_most_one_mib() {
        let mut chunks: Vec<usize> = Vec::new();
        let data = vec![7u8; APPEND_CHUNK * 2 + 10];
        {
            let mut out = Appender::new(|c: &[u8]| {
                chunks.push(c.len());
                Ok(())
            });
            out.push(b"head").unwrap();
            out.copy(&mut &data[..], data.len() as u64).unwrap();
            assert!(out.copy(&mut &data[..3], 5).is_err());
            out.finish().unwrap();
        }
        assert!(chunks.iter().all(|&c| c <= APPEND_CHUNK), "{chunks:?}");
        assert_eq!(chunks.iter().sum::<usize>(), 4 + data.len() + 3);
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(20 * 1024 * 1024), "20.0 MiB");
    }
}
