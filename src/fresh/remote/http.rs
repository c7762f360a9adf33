//! The remote cache's HTTP API, the one Turborepo's servers speak:
//! `HEAD`, `GET` and `PUT /v8/artifacts/HASH?teamId=TEAM` with
//! `Authorization: Bearer TOKEN`. Bodies stream between the network and a
//! file in pieces; every wait on the network is bounded, and a stop
//! request ends a transfer between two pieces.

use std::io::{Read, Write};
use std::time::Duration;

/// How long a connection, or one read or write on it, may take.
const TIMEOUT: Duration = Duration::from_secs(10);
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
    /// A stop request came during the transfer.
    Stopped,
    /// Writing or reading tasker's side of the transfer failed.
    Local(String),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Network(why) | Fault::BrokeOff(why) => write!(f, "{why}"),
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

/// The time limit of each network wait (a debug build lets a test make
/// it short, so that a test of a silent server does not wait 10 s).
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

impl Client {
    pub fn new(url: &str, team: &str, token: Option<String>) -> Client {
        let limit = Some(timeout());
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
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
        let response = self
            .agent
            .head(self.url(hash))
            .header("Authorization", self.bearer())
            .call()
            .map_err(network)?;
        match response.status().as_u16() {
            200..=299 => Ok(true),
            404 => Ok(false),
            status => Err(status_fault(status)),
        }
    }

    /// Download the artifact into `into`; `None` when the server has none.
    pub fn get(&self, hash: &str, into: &mut dyn Write) -> Result<Option<Got>, Fault> {
        let response = self
            .agent
            .get(self.url(hash))
            .header("Authorization", self.bearer())
            .call()
            .map_err(network)?;
        match response.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            status => return Err(status_fault(status)),
        }
        let tag = response
            .headers()
            .get("x-artifact-tag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = response.into_body().into_reader();
        let mut buf = vec![0u8; PIECE];
        let mut bytes = 0u64;
        loop {
            if crate::stop::requested().is_some() {
                return Err(Fault::Stopped);
            }
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Fault::BrokeOff(e.to_string())),
            };
            into.write_all(&buf[..n])
                .map_err(|e| Fault::Local(format!("cannot keep the download: {e}")))?;
            bytes += n as u64;
        }
        Ok(Some(Got { tag, bytes }))
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
        let mut reader = Stoppable(body);
        let result = request.send(ureq::SendBody::from_reader(&mut reader));
        if crate::stop::requested().is_some() {
            return Err(Fault::Stopped);
        }
        match result.map_err(network)?.status().as_u16() {
            200..=299 => Ok(()),
            status => Err(status_fault(status)),
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

fn network(e: ureq::Error) -> Fault {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    match e {
        ureq::Error::Timeout(_) => {
            Fault::Network(format!("no answer within {}s", timeout().as_secs_f32()))
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

/// `text` with every byte but the unreserved ones percent-encoded.
fn query_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_team_is_escaped_in_the_query() {
        let client = super::Client::new("http://cache.test/api/", "a team&x", None);
        assert_eq!(
            client.url("abc"),
            "http://cache.test/api/v8/artifacts/abc?teamId=a%20team%26x"
        );
    }
}
