//! Just enough AMQP 0-9-1 to prove the app's credentials open its vhost: the connection
//! handshake with PLAIN, then a clean close. Written by hand because `amq-protocol`
//! does not build for wasm32-wasip2; the grammar is in the AMQP 0-9-1 specification, §4.2.

use std::io::{Read, Write};

const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
const FRAME_METHOD: u8 = 1;
const FRAME_HEARTBEAT: u8 = 8;
const FRAME_END: u8 = 0xCE;
/// The handshake's frames are a few hundred bytes; a bound keeps a confused peer from
/// making the probe allocate much.
const MAX_FRAME: usize = 128 * 1024;

const START: (u16, u16) = (10, 10);
const START_OK: (u16, u16) = (10, 11);
const TUNE: (u16, u16) = (10, 30);
const TUNE_OK: (u16, u16) = (10, 31);
const OPEN: (u16, u16) = (10, 40);
const OPEN_OK: (u16, u16) = (10, 41);
const CLOSE: (u16, u16) = (10, 50);
const CLOSE_OK: (u16, u16) = (10, 51);

/// A field value of a table, as far as the client properties need.
enum Field<'a> {
    Bool(bool),
    LongStr(&'a str),
    Table(&'a [(&'a str, Field<'a>)]),
}

/// Method arguments, encoded big-endian as the specification's data types.
#[derive(Default)]
struct Args(Vec<u8>);

impl Args {
    fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    fn octet(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }

    /// Callers pass only names the config already limited to 255 bytes; a longer one
    /// is cut rather than sent with a length that lies.
    fn shortstr(mut self, s: &str) -> Self {
        let bytes = &s.as_bytes()[..s.len().min(255)];
        self.0.push(bytes.len() as u8);
        self.0.extend_from_slice(bytes);
        self
    }

    fn longstr(self, s: &[u8]) -> Self {
        let mut this = self.u32(s.len() as u32);
        this.0.extend_from_slice(s);
        this
    }

    fn table(self, entries: &[(&str, Field)]) -> Self {
        let mut body = Args::default();
        for (name, value) in entries {
            body = body.shortstr(name);
            body = match value {
                Field::Bool(b) => body.octet(b't').octet(*b as u8),
                Field::LongStr(s) => body.octet(b'S').longstr(s.as_bytes()),
                Field::Table(t) => body.octet(b'F').table(t),
            };
        }
        self.longstr(&body.0)
    }
}

/// A method frame on channel 0: type, channel, size, class, method, arguments, end.
fn method_frame((class, method): (u16, u16), args: Args) -> Vec<u8> {
    let payload = Args::default().u16(class).u16(method).0;
    let size = (payload.len() + args.0.len()) as u32;
    let mut frame = vec![FRAME_METHOD, 0, 0];
    frame.extend_from_slice(&size.to_be_bytes());
    frame.extend_from_slice(&payload);
    frame.extend_from_slice(&args.0);
    frame.push(FRAME_END);
    frame
}

/// A received method: its ids and the bytes of its arguments.
struct Method {
    id: (u16, u16),
    args: Vec<u8>,
}

/// Reads the specification's data types off a method's arguments.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err("truncated method arguments".into());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn shortstr(&mut self) -> Result<String, String> {
        let n = self.take(1)?[0] as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }

    fn longstr(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
}

fn read_exact(stream: &mut impl Read, buf: &mut [u8]) -> Result<(), String> {
    stream.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "the broker closed the connection".to_string(),
        _ => format!("receive: {e}"),
    })
}

/// The next method frame, skipping heartbeats.
fn read_method(stream: &mut impl Read) -> Result<Method, String> {
    loop {
        let mut header = [0u8; 7];
        read_exact(stream, &mut header)?;
        if &header[..4] == b"AMQP" {
            // The broker's own protocol header: it does not speak 0-9-1.
            let mut rest = [0u8; 1];
            read_exact(stream, &mut rest)?;
            return Err(format!("the broker wants AMQP {}-{}-{}", header[5], header[6], rest[0]));
        }
        let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]) as usize;
        if size > MAX_FRAME {
            return Err(format!("frame of {size} bytes during the handshake"));
        }
        let mut payload = vec![0u8; size + 1];
        read_exact(stream, &mut payload)?;
        if payload.pop() != Some(FRAME_END) {
            return Err("malformed frame (no frame-end octet)".into());
        }
        match header[0] {
            FRAME_HEARTBEAT => continue,
            FRAME_METHOD => {}
            other => return Err(format!("unexpected frame type {other} during the handshake")),
        }
        let mut cursor = Cursor(&payload);
        let id = (cursor.u16()?, cursor.u16()?);
        return Ok(Method { id, args: cursor.0.to_vec() });
    }
}

fn send(stream: &mut impl Write, frame: &[u8]) -> Result<(), String> {
    stream.write_all(frame).map_err(|e| format!("send: {e}"))
}

/// The next method, which must be `expected`; a Connection.Close is the broker's
/// refusal and becomes the error, with its reply text.
fn expect(stream: &mut (impl Read + Write), expected: (u16, u16), step: &str) -> Result<Method, String> {
    let method = read_method(stream)?;
    if method.id == expected {
        return Ok(method);
    }
    if method.id == CLOSE {
        let mut args = Cursor(&method.args);
        let (code, text) = (args.u16()?, args.shortstr()?);
        let _ = send(stream, &method_frame(CLOSE_OK, Args::default()));
        return Err(format!("{step}: refused ({code}): {text}"));
    }
    Err(format!("{step}: unexpected method {}.{}", method.id.0, method.id.1))
}

/// Open `vhost` as `user` and close again, over a fresh connection.
pub fn open_and_close(stream: &mut (impl Read + Write), user: &str, password: &str, vhost: &str) -> Result<(), String> {
    send(stream, PROTOCOL_HEADER)?;
    let start = expect(stream, START, "greeting")?;
    let mut args = Cursor(&start.args);
    args.take(2)?; // version-major, version-minor
    let properties = args.u32()? as usize;
    args.take(properties)?;
    let mechanisms = args.longstr()?;
    if !mechanisms.split(' ').any(|m| m == "PLAIN") {
        return Err(format!("the broker offers no PLAIN login (only {mechanisms})"));
    }

    // Without authentication_failure_close a refused login is a bare disconnect;
    // with it the broker says why.
    let capabilities = [("authentication_failure_close", Field::Bool(true))];
    let properties = [("product", Field::LongStr("provisioner")), ("capabilities", Field::Table(&capabilities))];
    let response = format!("\0{user}\0{password}");
    let start_ok = Args::default().table(&properties).shortstr("PLAIN").longstr(response.as_bytes()).shortstr("en_US");
    send(stream, &method_frame(START_OK, start_ok))?;

    let tune = expect(stream, TUNE, &format!("login as {user}"))?;
    let mut args = Cursor(&tune.args);
    let (channel_max, frame_max) = (args.u16()?, args.u32()?);
    // Heartbeat 0: the connection lives for a moment only. Tune-ok and open go in one
    // write: the broker answers only the second, and a second small write waits for
    // the first one's ACK (Nagle; the sandbox's sockets cannot turn it off), which the
    // broker delays by some 40 ms.
    let mut tune_ok_and_open = method_frame(TUNE_OK, Args::default().u16(channel_max).u32(frame_max).u16(0));
    tune_ok_and_open.extend(method_frame(OPEN, Args::default().shortstr(vhost).shortstr("").octet(0)));
    send(stream, &tune_ok_and_open)?;
    expect(stream, OPEN_OK, &format!("open vhost {vhost}"))?;

    send(stream, &method_frame(CLOSE, Args::default().u16(200).shortstr("").u16(0).u16(0)))?;
    expect(stream, CLOSE_OK, "close").map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A broker that answers with `script` whatever it is sent.
    struct Scripted {
        script: std::io::Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.script.read(buf)
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.sent.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn broker(frames: &[Vec<u8>]) -> Scripted {
        Scripted { script: std::io::Cursor::new(frames.concat()), sent: Vec::new() }
    }

    fn start() -> Vec<u8> {
        let properties = [("product", Field::LongStr("RabbitMQ"))];
        method_frame(START, Args::default().octet(0).octet(9).table(&properties).longstr(b"AMQPLAIN PLAIN").longstr(b"en_US"))
    }

    fn tune() -> Vec<u8> {
        method_frame(TUNE, Args::default().u16(2047).u32(131072).u16(60))
    }

    #[test]
    fn frames_are_encoded_as_the_specification_says() {
        let frame = method_frame(OPEN, Args::default().shortstr("shop").shortstr("").octet(0));
        assert_eq!(frame, b"\x01\x00\x00\x00\x00\x00\x0b\x00\x0a\x00\x28\x04shop\x00\x00\xce");
        let table = Args::default().table(&[("a", Field::Bool(true)), ("b", Field::LongStr("xy"))]).0;
        assert_eq!(table, b"\x00\x00\x00\x0d\x01at\x01\x01bS\x00\x00\x00\x02xy");
    }

    #[test]
    fn a_full_handshake_opens_and_closes() {
        let heartbeat = vec![FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END];
        let open_ok = method_frame(OPEN_OK, Args::default().shortstr(""));
        let mut b = broker(&[start(), heartbeat, tune(), open_ok, method_frame(CLOSE_OK, Args::default())]);
        open_and_close(&mut b, "app", "pw", "shop").unwrap();
        assert!(b.sent.starts_with(PROTOCOL_HEADER));
        assert!(b.sent.windows(8).any(|w| w == b"\0app\0pw\x05"), "PLAIN response, then the locale");
        let tune_ok = method_frame(TUNE_OK, Args::default().u16(2047).u32(131072).u16(0));
        assert!(b.sent.windows(tune_ok.len()).any(|w| w == tune_ok));
    }

    #[test]
    fn a_refusal_carries_the_reply_text() {
        let close = method_frame(CLOSE, Args::default().u16(530).shortstr("NOT_ALLOWED - access to vhost '/' refused").u16(10).u16(40));
        let mut b = broker(&[start(), tune(), close]);
        let err = open_and_close(&mut b, "app", "pw", "/").unwrap_err();
        assert_eq!(err, "open vhost /: refused (530): NOT_ALLOWED - access to vhost '/' refused");
        assert!(b.sent.ends_with(&method_frame(CLOSE_OK, Args::default())));
    }

    #[test]
    fn other_protocols_and_short_reads_are_errors() {
        let mut b = broker(&[b"AMQP\x00\x01\x00\x00".to_vec()]);
        assert_eq!(open_and_close(&mut b, "app", "pw", "shop").unwrap_err(), "the broker wants AMQP 1-0-0");
        let mut b = broker(&[start()[..10].to_vec()]);
        assert_eq!(open_and_close(&mut b, "app", "pw", "shop").unwrap_err(), "the broker closed the connection");
    }
}
