"""Ticketing backend: the example app of examples/ticketing.

An HTTP service (the standard library's ThreadingHTTPServer) that does one real thing
with each backing service, with the credentials its environment gives it:

  DATABASE_URL  postgres://USER:PW@HOST:5432/DB    PostgreSQL, through psycopg2
  REDIS_URL     redis://USER:PW@HOST:6379/0        Redis as an ACL user, through redis-py
  S3_ENDPOINT, S3_REGION, S3_BUCKET, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY
                S3 through boto3 (path-style addressing, signature v4)
  AMQP_URL      amqp://USER:PW@HOST:5672/VHOST     RabbitMQ, through pika (VHOST percent-encoded)
  PORT          the port to listen on (default 8000)

  GET  /health        200 when all four work (SELECT 1; PING; listing one object of
                      S3_BUCKET; opening an AMQP connection and channel), else 503. The
                      JSON body gives each check's status, never a credential.
  POST /tickets       {"title": "...", "attachment": "text"} -> 201 {"id": N}: a row in
                      PostgreSQL, committed once the attachment is stored in S3; a
                      `ticket.created` event on the durable queue `ticket-events`; the
                      ticket cached in Redis.
  GET  /tickets/<id>  the ticket, from Redis if cached, else from PostgreSQL, with its
                      attachment from S3 and "cached": true/false.

Every response carries `X-Replica: <hostname>`; each request logs one line on stdout.
On SIGTERM (or SIGINT) the listening socket closes at once, after taking the connections
already queued on it, so new connections are refused rather than left hanging; requests
in flight finish; then the process lingers 2 s before exiting, so that a load balancer
that caches addresses for a second meets refusals (and retries elsewhere), not timeouts.
"""

import json
import os
import re
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import boto3
import botocore.config
import pika
import psycopg2
import redis

ENV = os.environ
missing = [name for name in ("DATABASE_URL", "REDIS_URL", "S3_ENDPOINT", "S3_REGION", "S3_BUCKET",
                             "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "AMQP_URL") if not ENV.get(name)]
if missing:
    sys.exit(f"ticketing backend: missing environment variables: {', '.join(missing)}")

REPLICA = socket.gethostname()
BUCKET = ENV["S3_BUCKET"]
QUEUE = "ticket-events"
TIMEOUT = 3  # seconds, for each connection to, and call of, a backing service
LINGER = 2   # seconds between the last response and the exit, after SIGTERM
TICKET_PATH = re.compile(r"/tickets/([0-9]{1,18})")
# The advisory lock makes replicas that start together take turns: two concurrent
# CREATE TABLE IF NOT EXISTS can still collide.
SCHEMA = """SELECT pg_advisory_xact_lock(7461001);
CREATE TABLE IF NOT EXISTS tickets (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title text NOT NULL,
    has_attachment boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())"""

SECRETS = [ENV["S3_SECRET_ACCESS_KEY"]] + [
    p for name in ("DATABASE_URL", "REDIS_URL", "AMQP_URL")
    for p in {urlsplit(ENV[name]).password or "", unquote(urlsplit(ENV[name]).password or "")} if p]


def describe(error):
    """`Type: message` of an exception, on one short line, with any credential masked."""
    text = f"{type(error).__name__}: {error}"
    for secret in SECRETS:
        text = text.replace(secret, "***")
    return " ".join(text.split())[:300]


def log(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Failed(Exception):
    """Ends a request: `status` and `message` for the client, `detail` for the log."""

    def __init__(self, status, message, detail=""):
        super().__init__(message)
        self.status, self.detail = status, detail


def using(service, call):
    """call(), any failure in it answered as 503 `service is unavailable`."""
    try:
        return call()
    except Failed:
        raise
    except Exception as e:
        raise Failed(503, f"{service} is unavailable", f"{service}: {describe(e)}") from e


class Database:
    """A few PostgreSQL connections, opened when needed and kept for reuse. A connection
    found broken is dropped, and work that failed on a reused one is retried once."""

    def __init__(self, url):
        self.url, self.idle, self.lock = url, [], threading.Lock()
        self.slots = threading.BoundedSemaphore(8)
        self.schema_ready = False

    def run(self, work):
        """work(cursor) in one transaction, committed if it returns."""
        with self.slots:
            for attempt in (1, 2):
                with self.lock:
                    conn = self.idle.pop() if self.idle else None
                reused = conn is not None
                try:
                    conn = conn or psycopg2.connect(self.url, connect_timeout=TIMEOUT,
                                                    application_name="ticketing-backend")
                    with conn, conn.cursor() as cursor:  # commits, or rolls back on an error
                        result = work(cursor)
                except BaseException as e:
                    broken = isinstance(e, (psycopg2.OperationalError, psycopg2.InterfaceError))
                    if conn is not None and (broken or conn.closed):
                        conn.close()
                    elif conn is not None:
                        with self.lock:
                            self.idle.append(conn)  # rolled back, still usable
                    if broken and reused and attempt == 1:
                        continue
                    raise
                with self.lock:
                    self.idle.append(conn)
                return result

    def ensure_schema(self):
        if not self.schema_ready:  # two threads racing here both run the idempotent DDL
            self.run(lambda cur: cur.execute(SCHEMA))
            self.schema_ready = True


def amqp_connection(heartbeat=None):
    parameters = pika.URLParameters(ENV["AMQP_URL"])
    parameters.connection_attempts, parameters.socket_timeout = 1, TIMEOUT
    parameters.stack_timeout, parameters.blocked_connection_timeout = 2 * TIMEOUT, TIMEOUT
    if heartbeat is not None:
        parameters.heartbeat = heartbeat
    return pika.BlockingConnection(parameters)


class Publisher:
    """Events go out on one AMQP connection, used under a lock (pika's connections are
    not thread-safe), with publisher confirms; reopened when it fails, and the publish
    then retried once."""

    def __init__(self):
        self.lock, self.connection, self.channel = threading.Lock(), None, None

    def publish(self, event, body):
        properties = pika.BasicProperties(content_type="application/json", delivery_mode=2, type=event)
        with self.lock:
            for attempt in (1, 2):
                reused = self.channel is not None
                try:
                    if not reused:
                        # No heartbeats: nothing would answer them between publishes.
                        self.connection = amqp_connection(heartbeat=0)
                        self.channel = self.connection.channel()
                        self.channel.confirm_delivery()
                        self.channel.queue_declare(QUEUE, durable=True)
                    return self.channel.basic_publish("", QUEUE, body, properties, mandatory=True)
                except (pika.exceptions.AMQPError, OSError):
                    self._drop()
                    if not reused or attempt == 2:
                        raise

    def _drop(self):
        try:
            if self.connection is not None and self.connection.is_open:
                self.connection.close()
        except Exception:
            pass
        self.connection = self.channel = None

    def close(self):
        with self.lock:
            self._drop()


db = Database(ENV["DATABASE_URL"])
# redis-py and boto3 clients are thread-safe and connect only when used.
cache = redis.Redis.from_url(ENV["REDIS_URL"], socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT,
                             health_check_interval=10, decode_responses=True,
                             retry_on_error=[redis.exceptions.ConnectionError])
s3 = boto3.session.Session().client(
    "s3", endpoint_url=ENV["S3_ENDPOINT"], region_name=ENV["S3_REGION"],
    aws_access_key_id=ENV["S3_ACCESS_KEY_ID"], aws_secret_access_key=ENV["S3_SECRET_ACCESS_KEY"],
    config=botocore.config.Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                  connect_timeout=TIMEOUT, read_timeout=TIMEOUT,
                                  retries={"max_attempts": 2, "mode": "standard"}))
publisher = Publisher()


def check_amqp():
    connection = amqp_connection()
    try:
        connection.channel()
    finally:
        connection.close()


CHECKS = {
    "postgres": lambda: db.run(lambda cur: (cur.execute("SELECT 1"), cur.fetchone())),
    "redis": lambda: cache.ping(),
    "s3": lambda: s3.list_objects_v2(Bucket=BUCKET, MaxKeys=1),
    "amqp": check_amqp,
}
checkers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="health")


def health():
    running = {name: checkers.submit(check) for name, check in CHECKS.items()}
    checks = {}
    for name, future in running.items():
        try:
            future.result(timeout=3 * TIMEOUT)
            checks[name] = "ok"
        except Exception as e:
            checks[name] = f"failed: {describe(e)}"
    failed = [name for name, status in checks.items() if status != "ok"]
    body = {"status": "failing" if failed else "ok", "replica": REPLICA, "checks": checks}
    return (503 if failed else 200), body, (f"failed: {', '.join(failed)}" if failed else "")


def attachment_key(ticket_id):
    return f"tickets/{ticket_id}/attachment.txt"


def cache_ticket(ticket):
    """Best effort: a cache that fails only costs the next read a query. A note for the log."""
    try:
        cache.set(f"ticket:{ticket['id']}", json.dumps(ticket), ex=300)
        return ""
    except Exception as e:
        return f"cache: {describe(e)}"


def create_ticket(data):
    title, attachment = data.get("title"), data.get("attachment")
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        raise Failed(400, "`title` must be a non-empty string of at most 200 characters")
    if attachment is not None and not isinstance(attachment, str):
        raise Failed(400, "`attachment` must be a string")
    using("postgres", db.ensure_schema)

    def insert(cur):
        cur.execute("INSERT INTO tickets (title, has_attachment) VALUES (%s, %s) RETURNING id, created_at",
                    (title, attachment is not None))
        ticket_id, created_at = cur.fetchone()
        if attachment is not None:  # before the commit: no row without its attachment
            using("s3", lambda: s3.put_object(Bucket=BUCKET, Key=attachment_key(ticket_id),
                                              Body=attachment.encode(), ContentType="text/plain; charset=utf-8"))
        return {"id": ticket_id, "title": title, "has_attachment": attachment is not None,
                "created_at": created_at.isoformat()}

    ticket = using("postgres", lambda: db.run(insert))
    event = json.dumps({"event": "ticket.created", "replica": REPLICA, **ticket})
    using("amqp", lambda: publisher.publish("ticket.created", event))
    return 201, {"id": ticket["id"]}, cache_ticket(ticket)


def get_ticket(ticket_id):
    try:
        cached, note = cache.get(f"ticket:{ticket_id}"), ""
    except Exception as e:
        cached, note = None, f"cache: {describe(e)}"
    if cached:
        ticket = json.loads(cached)
    else:
        using("postgres", db.ensure_schema)
        row = using("postgres", lambda: db.run(lambda cur: (cur.execute(
            "SELECT id, title, has_attachment, created_at FROM tickets WHERE id = %s", (ticket_id,)),
            cur.fetchone())[1]))
        if row is None:
            raise Failed(404, f"no ticket {ticket_id}")
        ticket = {"id": row[0], "title": row[1], "has_attachment": row[2], "created_at": row[3].isoformat()}
        note = note or cache_ticket(ticket)
    attachment = None
    if ticket["has_attachment"]:
        attachment = using("s3", lambda: s3.get_object(Bucket=BUCKET, Key=attachment_key(ticket_id))["Body"]
                           .read().decode("utf-8", "replace"))
    return 200, {**ticket, "attachment": attachment, "cached": bool(cached)}, note


class Handler(BaseHTTPRequestHandler):
    server_version = "ticketing-backend"
    timeout = 30  # a silent client cannot hold a thread, or the shutdown, for ever

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    do_PUT = do_PATCH = do_DELETE = do_POST  # answered 405 or 404

    def log_request(self, code="-", size="-"):
        pass  # dispatch() logs its own line

    def read_json(self):
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise Failed(411, "a Content-Length is required")
        if not 0 <= length <= 1 << 20:
            raise Failed(413, "the body may have at most 1 MiB")
        try:
            data = json.loads(self.rfile.read(length))
        except ValueError:
            raise Failed(400, "the body must be JSON")
        if not isinstance(data, dict):
            raise Failed(400, "the body must be a JSON object")
        return data

    def route(self, path):
        ticket = TICKET_PATH.fullmatch(path)
        if (self.command, path) == ("GET", "/health"):
            return health()
        if (self.command, path) == ("POST", "/tickets"):
            return create_ticket(self.read_json())
        if self.command == "GET" and ticket:
            return get_ticket(int(ticket[1]))
        if path in ("/health", "/tickets") or ticket:
            raise Failed(405, "method not allowed")
        raise Failed(404, "not found")

    def dispatch(self):
        started, path = time.monotonic(), urlsplit(self.path).path
        try:
            status, body, note = self.route(path)
        except Failed as e:
            status, body, note = e.status, {"error": str(e)}, e.detail
        except Exception as e:
            status, body, note = 500, {"error": "internal error"}, describe(e)
        payload = (json.dumps(body) + "\n").encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("X-Replica", REPLICA)
            self.end_headers()
            self.wfile.write(payload)
        except OSError as e:
            note = (f"{note}; " if note else "") + f"client gone: {describe(e)}"
        ms = (time.monotonic() - started) * 1000
        log(f"{self.command} {path} {status} {ms:.1f}ms" + (f" ({note})" if note else ""))


class Server(ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = False  # tracked, so that server_close() waits for requests in flight


def main():
    # The stop signals are blocked in every thread (new threads inherit the mask) and
    # taken here with sigwait: no handler interrupts other code.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    port = int(ENV.get("PORT", "8000"))
    server = Server(("", port), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="http").start()
    log(f"replica {REPLICA} listening on port {port}")

    received = signal.sigwait(stop_signals)
    server.shutdown()  # the accept loop ends within its poll interval
    # Take the connections queued already (closing would reset them), then close:
    # from here on, connections are refused.
    server.socket.setblocking(False)
    while True:
        try:
            server.process_request(*server.get_request())
        except OSError:
            break
    server.socket.close()
    log(f"{signal.Signals(received).name}: refusing new connections, finishing those in flight")
    server.server_close()  # joins the request threads
    publisher.close()
    log(f"requests done; exiting in {LINGER} s")
    time.sleep(LINGER)
    checkers.shutdown(wait=False, cancel_futures=True)


if __name__ == "__main__":
    main()
