//! Just enough of the PostgreSQL wire protocol to prove the app's credentials work:
//! start-up, SCRAM-SHA-256 (or md5 / cleartext) authentication, `SELECT 1`.

use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use provisioner_plugin_sdk::probe;
use sha2::{Digest, Sha256};

/// A short fingerprint of a secret, safe to keep in a marker file.
pub fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

impl Conn {
    fn send(&mut self, write: impl FnOnce(&mut BytesMut) -> std::io::Result<()>) -> Result<(), String> {
        let mut out = BytesMut::new();
        write(&mut out).map_err(|e| e.to_string())?;
        self.stream.write_all(&out).map_err(|e| format!("send: {e}"))
    }

    fn receive(&mut self) -> Result<Message, String> {
        loop {
            if let Some(message) = Message::parse(&mut self.buf).map_err(|e| format!("protocol: {e}"))? {
                return Ok(message);
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).map_err(|e| format!("receive: {e}"))?;
            if n == 0 {
                return Err("the server closed the connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn error_text(body: &postgres_protocol::message::backend::ErrorResponseBody) -> String {
    let mut fields = body.fields();
    let mut message = String::from("server error");
    while let Ok(Some(field)) = fields.next() {
        if field.type_() == b'M' {
            message = String::from_utf8_lossy(field.value_bytes()).into_owned();
        }
    }
    message
}

/// Whether the server at `addr` takes logins: it answers a start-up message with an
/// authentication request. Through Docker's port proxy a connection opens even while
/// nothing listens behind it, so the answer, not the connect, is the proof. During the
/// image's first-start initialisation the server does not listen on TCP at all, and
/// during crash recovery it answers "the database system is starting up" (SQLSTATE
/// 57P03) instead: both are "not yet". An SSLRequest is not enough: the postmaster
/// answers it in recovery too. (The server logs nothing for a client that leaves at the
/// password prompt.)
pub fn accepts_logins(addr: &str) -> Result<(), String> {
    let stream = probe::tcp(addr)?;
    let mut conn = Conn { stream, buf: BytesMut::new() };
    conn.send(|b| frontend::startup_message([("user", "postgres"), ("database", "postgres")], b))?;
    match conn.receive() {
        Ok(
            Message::AuthenticationOk
            | Message::AuthenticationCleartextPassword
            | Message::AuthenticationMd5Password(_)
            | Message::AuthenticationSasl(_),
        ) => Ok(()),
        Ok(Message::ErrorResponse(body)) => Err(error_text(&body)),
        Ok(_) => Err(format!("{addr} answered a start-up message with something other than PostgreSQL's")),
        Err(e) if e.contains("closed the connection") => Err("not accepting connections yet".into()),
        Err(e) => Err(e),
    }
}

/// Log in as `user` to `database` at `addr` and run `SELECT 1`.
pub fn login_and_select_one(addr: &str, user: &str, password: &str, database: &str) -> Result<(), String> {
    let stream = probe::tcp(addr)?;
    let mut conn = Conn { stream, buf: BytesMut::new() };
    conn.send(|b| frontend::startup_message([("user", user), ("database", database)], b))?;

    let mut scram: Option<ScramSha256> = None;
    loop {
        match conn.receive()? {
            Message::AuthenticationOk => {}
            Message::AuthenticationCleartextPassword => conn.send(|b| frontend::password_message(password.as_bytes(), b))?,
            Message::AuthenticationMd5Password(body) => {
                let hash = postgres_protocol::authentication::md5_hash(user.as_bytes(), password.as_bytes(), body.salt());
                conn.send(|b| frontend::password_message(hash.as_bytes(), b))?;
            }
            Message::AuthenticationSasl(body) => {
                let mut mechanisms = body.mechanisms();
                let mut offered = false;
                while let Ok(Some(m)) = mechanisms.next() {
                    offered |= m == SCRAM_SHA_256;
                }
                if !offered {
                    return Err("the server offers no SCRAM-SHA-256".into());
                }
                let s = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
                conn.send(|b| frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), b))?;
                scram = Some(s);
            }
            Message::AuthenticationSaslContinue(body) => {
                let s = scram.as_mut().ok_or("SASL continue before start")?;
                s.update(body.data()).map_err(|e| format!("SCRAM: {e}"))?;
                let message = s.message().to_vec();
                conn.send(|b| frontend::sasl_response(&message, b))?;
            }
            Message::AuthenticationSaslFinal(body) => {
                let s = scram.as_mut().ok_or("SASL final before start")?;
                s.finish(body.data()).map_err(|e| format!("SCRAM: {e}"))?;
            }
            Message::ErrorResponse(body) => return Err(error_text(&body)),
            Message::ReadyForQuery(_) => break,
            _ => {}
        }
    }

    conn.send(|b| frontend::query("SELECT 1", b))?;
    let mut answered = false;
    loop {
        match conn.receive()? {
            Message::DataRow(row) => {
                let ranges: Vec<_> = row.ranges().collect().map_err(|e| e.to_string())?;
                let value = ranges.first().cloned().flatten().map(|r| row.buffer()[r].to_vec());
                answered = value.as_deref() == Some(b"1");
            }
            Message::ErrorResponse(body) => return Err(error_text(&body)),
            Message::ReadyForQuery(_) => break,
            _ => {}
        }
    }
    let _ = conn.send(|b| {
        frontend::terminate(b);
        Ok(())
    });
    if answered {
        Ok(())
    } else {
        Err("SELECT 1 did not answer 1".into())
    }
}
