//! The remote cache's HTTP API, the one Turborepo's servers speak:
//! `HEAD`, `GET` and `PUT /v8/artifacts/HASH?teamId=TEAM` with
//! `Authorization: Bearer TOKEN`. Bodies stream between the network and a
//! file in pieces. Every request has a deadline for the whole of it (ureq's
//! global timeout: a server that dribbles cannot hold tasker longer), every
//! wait on the network a shorter one of its own, and a stop request ends a
//! transfer between two pieces.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// How long a connection, or one read or write on it, may take, and the
/// deadline of a whole request that moves no artifact.
const TIMEOUT: Duration = Duration::from_secs(10);
/// What each MiB of artifact a request moves adds to its deadline.
const PER_MIB: Duration = Duration::from_secs(1);
/// Bytes moved between the network and a file at once.
const PIECE: usize = 256 * 1024;

/// Why an exchange with the server did not give an answer tasker can use.
#[derive(Debug)]
pub enum Fault {
    /// No answer: unreachable, or timed out.
    Network(String),
    /// The server closed the connection in the middle of an exchange.
    BrokeOff(String),
    /// The server failed (5xx).
    Server(u16),
    /// The server refused the token (401, 403).
    Auth(u16),
    /// Another answer this exchange cannot use (a 4xx).
    Refused(u16),
    /// The server answered, but not within the request's deadline (or
    /// fell silent in the middle of a body).
    Late(String),
    /// A stop request came during the transfer.
    Stopped,
    /// Writing or reading tasker's side of the transfer failed.
    Local(String),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Network(why) | Fault::BrokeOff(why) | Fault::Late(why) => write!(f, "{why}"),
            Fault::Server(status) => write!(f, "the server failed (HTTP {status})"),
            Fault::Auth(status) => write!(f, "the server refused the token (HTTP {status})"),
            Fault::Refused(status) => write!(f, "the server answered HTTP {status}"),
            Fault::Stopped => write!(f, "stopped"),
            Fault::Local(why) => write!(f, "{why}"),
        }
    }
}

/// An artifact that was found: its tag, if the server sent one, and its
/// size.
pub struct Got {
    pub tag: Option<String>,
    pub bytes: u64,
}

pub struct Client {
    agent: ureq::Agent,
    /// The server's URL without a trailing `/`.
    base: String,
    team: String,
    token: Option<String>,
}

/// The time limit of each network wait, and the deadline of a request
/// that moves no artifact (a debug build lets a test make it short, so
/// that a test of a silent server does not wait 10 s).
fn timeout() -> Duration {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("TASKER_TEST_REMOTE_TIMEOUT_MS")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        return Duration::from_millis(ms);
    }
    TIMEOUT
}

/// The deadline of a whole request (from resolving the server's name to
/// the last byte of the answer) that moves `bytes` of artifact.
fn deadline(bytes: u64) -> Duration {
    timeout() + PER_MIB.mul_f64(bytes as f64 / (1u64 << 20) as f64)
}

/// `0.3s`, `10s`, `11.5s`: a limit as a warning says it.
fn seconds(limit: Duration) -> String {
    let tenths = (limit.as_secs_f64() * 10.0).round() / 10.0;
    format!("{tenths}s")
}

/// What a HEAD says about an artifact.
enum Head {
    Missing,
    /// There, with its size when the server says it.
    Found(Option<u64>),
    /// The server does not answer HEAD (405, 501).
    Unsupported(u16),
}

impl Client {
    pub fn new(url: &str, team: &str, token: Option<String>) -> Client {
        let limit = Some(timeout());
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(limit)
            .timeout_resolve(limit)
            .timeout_connect(limit)
            .timeout_per_read(limit)
            .timeout_per_write(limit)
            .user_agent(format!("tasker/{}", env!("CARGO_PKG_VERSION")))
            .build();
        Client {
            agent: config.into(),
            base: url.trim_end_matches('/').to_string(),
            team: team.to_string(),
            token,
        }
    }

    pub fn team(&self) -> &str {
        &self.team
    }

    fn url(&self, hash: &str) -> String {
        format!(
            "{}/v8/artifacts/{hash}?teamId={}",
            self.base,
            query_escaped(&self.team)
        )
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token.as_deref().unwrap_or(""))
    }

    /// Whether the server holds the artifact.
    pub fn exists(&self, hash: &str) -> Result<bool, Fault> {
        match self.head(hash)? {
            Head::Missing => Ok(false),
            Head::Found(_) => Ok(true),
            Head::Unsupported(status) => Err(Fault::Refused(status)),
        }
    }

    fn head(&self, hash: &str) -> Result<Head, Fault> {
        let limit = deadline(0);
        let response = self
            .agent
            .head(self.url(hash))
            .header("Authorization", self.bearer())
            .call()
            .map_err(|e| network(e, limit))?;
        match response.status().as_u16() {
            200..=299 => Ok(Head::Found(
                response
                    .headers()
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok()),
            )),
            404 => Ok(Head::Missing),
            status @ (405 | 501) => Ok(Head::Unsupported(status)),
            status => Err(status_fault(status)),
        }
    }

    /// Download the artifact into `into`; `None` when the server has none.
    /// A HEAD first, for the size that sets the download's deadline.
    pub fn get(&self, hash: &str, into: &mut dyn Write) -> Result<Option<Got>, Fault> {
        let mut size = match self.head(hash)? {
            Head::Missing => return Ok(None),
            Head::Found(size) => size,
            Head::Unsupported(_) => None,
        };
        let started = Instant::now();
        let Some(mut response) = self.ask_get(hash, size)? else {
            return Ok(None);
        };
        // The body is larger than the HEAD said, or the HEAD said nothing:
        // asked once more, with the deadline of the size it has.
        if let Some(told) = response.body().content_length() {
            if size.is_none_or(|s| told > s) {
                size = Some(told);
                let Some(again) = self.ask_get(hash, size)? else {
                    return Ok(None);
                };
                response = again;
            }
        }
        let tag = response
            .headers()
            .get("x-artifact-tag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = response.into_body().into_reader();
        let stopped = || crate::stop::requested().is_some();
        // Known, the size set ureq's deadline; else it is checked here.
        let late = |bytes: u64| size.is_none() && started.elapsed() > deadline(bytes);
        let bytes = copy_body(&mut body, into, &stopped, &late)
            .map_err(|e| download_fault(e, size, started))?;
        Ok(Some(Got { tag, bytes }))
    }

    /// A GET of the artifact, with the deadline of `size` (when it is
    /// known), up to its headers: `None` for a 404.
    fn ask_get(
        &self,
        hash: &str,
        size: Option<u64>,
    ) -> Result<Option<ureq::http::Response<ureq::Body>>, Fault> {
        let request = self
            .agent
            .get(self.url(hash))
            .header("Authorization", self.bearer())
            .config();
        let request = match size {
            Some(size) => request.timeout_global(Some(deadline(size))),
            // The headers are due as for a request that moves nothing; the
            // body's deadline grows as it comes (`copy_body`).
            None => request
                .timeout_global(None)
                .timeout_send_request(Some(timeout()))
                .timeout_recv_response(Some(timeout())),
        };
        let limit = size.map_or(timeout(), deadline);
        let response = request.build().call().map_err(|e| network(e, limit))?;
        match response.status().as_u16() {
            200 => Ok(Some(response)),
            404 => Ok(None),
            status => Err(status_fault(status)),
        }
    }

    /// Upload `len` bytes from `body` as the artifact `hash`.
    pub fn put(
        &self,
        hash: &str,
        body: &mut dyn Read,
        len: u64,
        tag: Option<&str>,
        took: Duration,
    ) -> Result<(), Fault> {
        let limit = deadline(len);
        let mut request = self
            .agent
            .put(self.url(hash))
            .header("Authorization", self.bearer())
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", len.to_string())
            .header("x-artifact-duration", took.as_millis().to_string());
        if let Some(tag) = tag {
            request = request.header("x-artifact-tag", tag);
        }
        let request = request.config().timeout_global(Some(limit)).build();
        let mut reader = Stoppable(body);
        let result = request.send(ureq::SendBody::from_reader(&mut reader));
        if crate::stop::requested().is_some() {
            return Err(Fault::Stopped);
        }
        let response = result.map_err(|e| match e {
            ureq::Error::Timeout(ureq::Timeout::Global) => Fault::Late(format!(
                "the upload of {} did not end within its deadline of {}",
                super::human_bytes(len),
                seconds(limit)
            )),
            other => network(other, limit),
        })?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            status => Err(status_fault(status)),
        }
    }
}

/// Why a body was not copied whole (with the bytes copied until then).
enum CopyFault {
    Read(std::io::Error, u64),
    Write(std::io::Error),
    Late(u64),
    Stopped,
}

/// Copy `body` into `into` in pieces until it ends, checking between
/// pieces whether a stop was requested and whether the bytes so far come
/// `late`. A read a signal interrupted (EINTR) is made again: the signal
/// is no fault of the server's.
fn copy_body(
    body: &mut dyn Read,
    into: &mut dyn Write,
    stopped: &dyn Fn() -> bool,
    late: &dyn Fn(u64) -> bool,
) -> Result<u64, CopyFault> {
    let mut buf = vec![0u8; PIECE];
    let mut bytes = 0u64;
    loop {
        if stopped() {
            return Err(CopyFault::Stopped);
        }
        if late(bytes) {
            return Err(CopyFault::Late(bytes));
        }
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok(bytes),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyFault::Read(e, bytes)),
        };
        into.write_all(&buf[..n]).map_err(CopyFault::Write)?;
        bytes += n as u64;
    }
}

/// The fault of a download whose body was not copied whole: `size` as
/// far as it is known, `started` when its GET was made.
fn download_fault(fault: CopyFault, size: Option<u64>, started: Instant) -> Fault {
    match fault {
        CopyFault::Stopped => Fault::Stopped,
        CopyFault::Write(e) => Fault::Local(format!("cannot keep the download: {e}")),
        CopyFault::Late(bytes) => Fault::Late(format!(
            "the download fell behind its deadline of {} plus 1s per MiB: {} in {}",
            seconds(timeout()),
            super::human_bytes(bytes),
            seconds(started.elapsed())
        )),
        CopyFault::Read(e, bytes) => {
            let of = match size {
                Some(size) => super::human_bytes(size),
                None => format!("{} so far", super::human_bytes(bytes)),
            };
            match ureq::Error::from(e) {
                ureq::Error::Timeout(ureq::Timeout::Global) => Fault::Late(format!(
                    "the download of {of} did not end within its deadline of {}",
                    seconds(size.map_or(timeout(), deadline))
                )),
                ureq::Error::Timeout(_) => Fault::Late(format!(
                    "the download of {of} stalled: nothing came for {}",
                    seconds(timeout())
                )),
                other => Fault::BrokeOff(other.to_string()),
            }
        }
    }
}

/// A request body that ends with an error once a stop request came.
struct Stoppable<'a>(&'a mut dyn Read);

impl Read for Stoppable<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if crate::stop::requested().is_some() {
            return Err(std::io::Error::other("stopped"));
        }
        self.0.read(buf)
    }
}

fn status_fault(status: u16) -> Fault {
    match status {
        401 | 403 => Fault::Auth(status),
        500..=599 => Fault::Server(status),
        _ => Fault::Refused(status),
    }
}

/// The fault of a request that got no answer; `limit` is its deadline.
fn network(e: ureq::Error, limit: Duration) -> Fault {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    match e {
        ureq::Error::Timeout(ureq::Timeout::Global) => {
            Fault::Network(format!("no answer within {}", seconds(limit)))
        }
        ureq::Error::Timeout(_) => {
            Fault::Network(format!("no answer within {}", seconds(timeout())))
        }
        ureq::Error::Io(e)
            if matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted) =>
        {
            Fault::BrokeOff(e.to_string())
        }
        ureq::Error::Io(e) => Fault::Network(e.to_string()),
        other => Fault::Network(other.to_string()),
    }
}

/// Every byte but the unreserved ones of RFC 3986 (letters, digits and
/// `-._~`): what a query value is sent as.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` with every byte but the unreserved ones percent-encoded.
fn query_escaped(text: &str) -> String {
    utf8_percent_encode(text, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_value_keeps_only_the_unreserved_bytes() {
        assert_eq!(query_escaped("team-A_1.x~"), "team-A_1.x~");
        assert_eq!(query_escaped("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }

    /// A body that a signal interrupts before every piece.
    struct Interrupted<'a> {
        pieces: Vec<&'a [u8]>,
        interrupt: bool,
    }

    impl Read for Interrupted<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let Some(piece) = self.pieces.pop() else {
                return Ok(0);
            };
            buf[..piece.len()].copy_from_slice(piece);
            Ok(piece.len())
        }
    }

    #[test]
    fn a_read_a_signal_interrupts_is_made_again() {
        let mut body = Interrupted {
            pieces: vec![b"world", b"hello "],
            interrupt: false,
        };
        let mut into = Vec::new();
        let copied = copy_body(&mut body, &mut into, &|| false, &|_| false);
        assert!(matches!(copied, Ok(11)));
        assert_eq!(into, b"hello world");
        // Any other error ends the copy.
        let mut broken = std::io::Cursor::new(b"x".to_vec()).chain(Broken);
        assert!(matches!(
            copy_body(&mut broken, &mut Vec::new(), &|| false, &|_| false),
            Err(CopyFault::Read(_, 1))
        ));
        // So does falling behind.
        let mut body = Interrupted {
            pieces: vec![b"world", b"hello "],
            interrupt: false,
        };
        assert!(matches!(
            copy_body(&mut body, &mut Vec::new(), &|| false, &|n| n > 0),
            Err(CopyFault::Late(6))
        ));
    }

    struct Broken;

    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::ConnectionReset.into())
        }
    }

    #[test]
    fn the_deadline_grows_with_the_artifact() {
        assert_eq!(deadline(0), timeout());
        assert_eq!(deadline(3 << 20), timeout() + Duration::from_secs(3));
        assert_eq!(seconds(Duration::from_millis(300)), "0.3s");
        assert_eq!(seconds(Duration::from_secs(10)), "10s");
        assert_eq!(seconds(Duration::from_millis(11_549)), "11.5s");
    }

    #[test]
    fn the_team_is_escaped_in_the_query() {
        let client = Client::new("http://cache.test/api/", "a team&x", None);
        assert_eq!(
            client.url("abc"),
            "http://cache.test/api/v8/artifacts/abc?teamId=a%20team%26x"
        );
    }
}
