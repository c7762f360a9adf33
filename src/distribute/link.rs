//! One connection to the Redis server, under the `redis` crate's commands
//! (it is their `ConnectionLike`): every command has a deadline (see
//! `health`), and a read or write a signal interrupts is made again.
//!
//! Not the crate's own connection: with a socket timeout, it takes an
//! interrupted read for a failure, and Linux interrupts a socket read
//! that has a timeout whenever a signal handler runs on its thread or the
//! process is stopped and continued (SIGSTOP, SIGCONT), whatever
//! `SA_RESTART` says (signal(7)). Here the socket waits in slices of at
//! most `SLICE`: an interruption, or a slice that ends without data, is
//! not a failure until the command's deadline passes, and a deadline
//! brought closer (a worker that stops) is seen within a slice.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{
    ConnectionAddr, ConnectionInfo, ConnectionLike, IntoConnectionInfo, RedisResult, Value,
};

use super::health::Health;

/// The longest one wait on the socket lasts before the deadline is
/// looked at again.
const SLICE: Duration = Duration::from_millis(100);

/// Where connections go, and how.
pub struct Target {
    pub info: ConnectionInfo,
    /// For `rediss://`: the trusted root certificates.
    tls: Option<Arc<rustls::ClientConfig>>,
    pub health: Arc<Health>,
}

impl Target {
    /// The target a queue URL names, or why it names none.
    pub fn new(url: &str, health: Arc<Health>) -> Result<Target, String> {
        let (url, tls) = without_tls(url)?;
        let info = url.into_connection_info().map_err(|e| e.to_string())?;
        let tls = if tls { Some(tls_config()?) } else { None };
        Ok(Target { info, tls, health })
    }
}

/// A `rediss://` (or `valkeys://`) URL as the plain URL the redis crate
/// reads, and whether it asks for TLS: the crate is built without TLS,
/// which is this module's.
fn without_tls(url: &str) -> Result<(String, bool), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Ok((url.to_string(), false));
    };
    let plain = match scheme.to_ascii_lowercase().as_str() {
        "rediss" => "redis",
        "valkeys" => "valkey",
        _ => return Ok((url.to_string(), false)),
    };
    match rest.split_once('#') {
        None => Ok((format!("{plain}://{rest}"), true)),
        Some((_, "insecure")) => Err("`#insecure` (no certificate check) is not supported".into()),
        Some((_, fragment)) => Err(format!("`#{fragment}` is not supported")),
    }
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots()?)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The system's root certificates (or those of SSL_CERT_FILE and
/// SSL_CERT_DIR when set).
#[cfg(not(target_os = "macos"))]
fn roots() -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    Ok(roots)
}

/// The certificates of SSL_CERT_FILE when it is set, else the roots built
/// into tasker (Mozilla's list): the Keychain needs the Security framework,
/// which a build from Linux cannot link (docs/platforms.md).
#[cfg(target_os = "macos")]
fn roots() -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let Some(file) = std::env::var_os("SSL_CERT_FILE") else {
        return Ok(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let shown = std::path::Path::new(&file).display().to_string();
    let certs = CertificateDer::pem_file_iter(&file)
        .map_err(|e| format!("SSL_CERT_FILE `{shown}` cannot be read: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(certs.flatten());
    if roots.is_empty() {
        return Err(format!("SSL_CERT_FILE `{shown}` holds no certificate"));
    }
    Ok(roots)
}

enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Sock {
    fn set_timeouts(&self, wait: Duration) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => {
                s.set_read_timeout(Some(wait))?;
                s.set_write_timeout(Some(wait))
            }
            Sock::Unix(s) => {
                s.set_read_timeout(Some(wait))?;
                s.set_write_timeout(Some(wait))
            }
        }
    }
}

/// The socket, with the deadline of the command in progress.
struct Timed {
    sock: Sock,
    health: Arc<Health>,
    started: Instant,
    block: Duration,
    /// The wait set on the socket now.
    slice: Option<Duration>,
}

impl Timed {
    /// Do `io` until it does something, fails, or the deadline passes.
    fn wait<T>(&mut self, mut io: impl FnMut(&mut Sock) -> io::Result<T>) -> io::Result<T> {
        loop {
            let end = self.health.deadline(self.started, self.block);
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no answer within {:.1} s",
                        end.saturating_duration_since(self.started).as_secs_f64()
                    ),
                ));
            }
            let slice = left.min(SLICE).max(Duration::from_millis(1));
            if self.slice != Some(slice) {
                self.sock.set_timeouts(slice)?;
                self.slice = Some(slice);
            }
            match io(&mut self.sock) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted
                            | io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                    ) => {}
                done => return done,
            }
        }
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.wait(|sock| match sock {
            Sock::Tcp(s) => s.read(buf),
            Sock::Unix(s) => s.read(buf),
        })
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.wait(|sock| match sock {
            Sock::Tcp(s) => s.write(buf),
            Sock::Unix(s) => s.write(buf),
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Stream {
    Plain(Timed),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, Timed>>),
}

impl Stream {
    fn timed(&mut self) -> &mut Timed {
        match self {
            Stream::Plain(t) => t,
            Stream::Tls(s) => &mut s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(t) => t.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

/// An open connection. Any error leaves it unusable (a reply may still
/// be owed): the caller drops it.
pub struct Link {
    stream: Stream,
    parser: redis::Parser,
    db: i64,
    /// The block time of the next commands.
    pub block: Duration,
}

impl Link {
    /// Connect, (with TLS), and log in; all within one command's deadline.
    pub fn open(target: &Target) -> RedisResult<Link> {
        let health = &target.health;
        let started = Instant::now();
        let sock = match target.info.addr() {
            ConnectionAddr::Tcp(host, port) => Sock::Tcp(connect(
                host,
                *port,
                health.deadline(started, Duration::ZERO),
            )?),
            ConnectionAddr::Unix(path) => Sock::Unix(UnixStream::connect(path)?),
            other => {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    "unsupported address",
                    format!("{other}"),
                )))
            }
        };
        let timed = Timed {
            sock,
            health: Arc::clone(health),
            started,
            block: Duration::ZERO,
            slice: None,
        };
        let stream = match (&target.tls, target.info.addr()) {
            (Some(config), ConnectionAddr::Tcp(host, _)) => {
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let conn = rustls::ClientConnection::new(Arc::clone(config), name)
                    .map_err(io::Error::other)?;
                Stream::Tls(Box::new(rustls::StreamOwned::new(conn, timed)))
            }
            _ => Stream::Plain(timed),
        };
        let settings = target.info.redis_settings();
        let mut link = Link {
            stream,
            parser: redis::Parser::new(),
            db: settings.db(),
            block: Duration::ZERO,
        };
        if let Some(password) = settings.password() {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = settings.username() {
                auth.arg(user);
            }
            auth.arg(password).exec(&mut link)?;
        }
        if settings.db() != 0 {
            redis::cmd("SELECT").arg(settings.db()).exec(&mut link)?;
        }
        Ok(link)
    }

    fn send(&mut self, bytes: &[u8]) -> RedisResult<()> {
        let timed = self.stream.timed();
        timed.started = Instant::now();
        timed.block = self.block;
        match &mut self.stream {
            Stream::Plain(t) => t.write_all(bytes)?,
            Stream::Tls(s) => {
                s.write_all(bytes)?;
                s.flush()?;
            }
        }
        Ok(())
    }

    fn receive(&mut self) -> RedisResult<Value> {
        loop {
            let value = self.parser.parse_value(&mut self.stream)?;
            self.stream.timed().health.heard();
            if !matches!(value, Value::Push { .. }) {
                return Ok(value);
            }
        }
    }
}

/// A TCP connection to `host:port`, made by `deadline`.
fn connect(host: &str, port: u16, deadline: Instant) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("no address for {host}"));
    for addr in (host, port).to_socket_addrs()? {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(tcp) => {
                tcp.set_nodelay(true)?;
                return Ok(tcp);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

impl ConnectionLike for Link {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        self.send(cmd)?;
        self.receive()
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        self.send(cmd)?;
        let mut replies = Vec::with_capacity(count);
        let mut refused = None;
        for i in 0..offset + count {
            let value = self.receive()?;
            if i >= offset {
                replies.push(value);
            } else if let Value::ServerError(_) = value {
                // A command of a transaction the server refused to queue.
                refused.get_or_insert(value);
            }
        }
        if let Some(refused) = refused {
            refused.extract_error()?;
        }
        Ok(replies)
    }

    fn get_db(&self) -> i64 {
        self.db
    }

    fn check_connection(&mut self) -> bool {
        redis::cmd("PING").query::<String>(self).is_ok()
    }

    fn is_open(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn target(port: u16) -> Target {
        let health = Arc::new(Health::new(false));
        health.heard();
        Target::new(&format!("redis://127.0.0.1:{port}"), health).unwrap()
    }

    /// A read that signals interrupt again and again (a handler runs on
    /// the reading thread) still gets its reply.
    #[test]
    fn a_read_interrupted_by_signals_is_made_again() {
        let flag = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(libc::SIGUSR2, Arc::clone(&flag)).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf).unwrap();
            std::thread::sleep(Duration::from_millis(400));
            s.write_all(b"+PONG\r\n").unwrap();
            std::thread::sleep(Duration::from_millis(100));
        });
        let mut link = Link::open(&target(port)).unwrap();
        let reader = std::thread::spawn(move || {
            let reply: RedisResult<String> = redis::cmd("PING").query(&mut link);
            reply
        });
        let thread = std::os::unix::thread::JoinHandleExt::as_pthread_t(&reader);
        while !reader.is_finished() {
            // SAFETY: the reading thread is joined only below, so its id
            // stays valid; the signal runs signal-hook's handler there.
            unsafe { libc::pthread_kill(thread, libc::SIGUSR2) };
            std::thread::sleep(Duration::from_millis(5));
        }
        let reply = reader.join().unwrap();
        server.join().unwrap();
        assert_eq!(reply.unwrap(), "PONG");
        assert!(flag.load(Ordering::SeqCst), "no signal arrived");
    }

    #[test]
    fn a_tls_url_is_read_as_the_plain_one_with_tls_asked_for() {
        let read = |url: &str| without_tls(url);
        assert_eq!(
            read("rediss://u:pw@h:6380/2"),
            Ok(("redis://u:pw@h:6380/2".to_string(), true))
        );
        assert_eq!(read("VALKEYS://h"), Ok(("valkey://h".to_string(), true)));
        assert_eq!(read("redis://h"), Ok(("redis://h".to_string(), false)));
        assert_eq!(
            read("unix:///tmp/r.sock"),
            Ok(("unix:///tmp/r.sock".to_string(), false))
        );
        assert!(read("rediss://h/#insecure")
            .unwrap_err()
            .contains("no certificate check"));
        assert_eq!(
            read("rediss://h#other"),
            Err("`#other` is not supported".to_string())
        );
    }

    #[test]
    fn a_server_that_never_answers_fails_the_command_at_its_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_millis(1500));
            drop(s);
        });
        let target = target(port);
        let mut link = Link::open(&target).unwrap();
        target.health.stopping();
        let started = Instant::now();
        let reply: RedisResult<String> = redis::cmd("PING").query(&mut link);
        let took = started.elapsed();
        assert!(reply.unwrap_err().is_timeout());
        assert!(took < Duration::from_millis(900), "took {took:?}");
        server.join().unwrap();
    }
}
