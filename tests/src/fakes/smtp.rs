//! A real SMTP server on 127.0.0.1 for the email tests.
//!
//! The protocol is `mailin`'s state machine (command parsing, EHLO
//! extensions, STARTTLS, AUTH PLAIN and LOGIN, DATA with dot-unstuffing,
//! the reply codes); this module drives it over tokio with rustls for
//! STARTTLS and implicit TLS, using a self-signed certificate for
//! `localhost` and `127.0.0.1` generated per server. It records every
//! accepted message and can answer from a script: 451 to the recipients of
//! the first N transactions (as greylisting does), 550 for given recipients.
//!
//! It shares the 127.0.0.1 binding and the state lock with the HTTP fakes
//! (`scaffold`). The server stops when the [`SmtpServer`] is dropped.

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub use mailin::AuthMechanism;
use mailin::{Action, Handler, Response, SessionBuilder};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use super::scaffold::{self, lock};

/// How the server secures connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain SMTP, no STARTTLS offered.
    Plain,
    /// Plain SMTP offering STARTTLS; AUTH only after the upgrade.
    StartTls,
    /// TLS from the first byte.
    ImplicitTls,
}

/// A message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// MAIL FROM.
    pub from: String,
    /// RCPT TO, in order.
    pub to: Vec<String>,
    /// The message as transferred (dot-unstuffed, CRLF line ends).
    pub data: Vec<u8>,
    /// Whether the connection was encrypted.
    pub tls: bool,
    /// The user that authenticated, if any.
    pub user: Option<String>,
    /// The EHLO name the client sent.
    pub helo: String,
}

/// Configures a server before it starts.
#[derive(Debug, Clone)]
pub struct Builder {
    security: Security,
    auth: Option<(String, String)>,
    mechanisms: Vec<AuthMechanism>,
}

impl Builder {
    /// Requires AUTH with this user and password (PLAIN and LOGIN offered).
    pub fn auth(mut self, user: &str, password: &str) -> Self {
        self.auth = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Offers only these AUTH mechanisms (default: PLAIN, then LOGIN).
    pub fn mechanisms(mut self, mechanisms: &[AuthMechanism]) -> Self {
        self.mechanisms = mechanisms.to_vec();
        self
    }

    /// Binds 127.0.0.1 on a free port and starts serving.
    pub async fn start(self) -> SmtpServer {
        let (listener, addr) = scaffold::bind().await;
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("self-signed certificate");
        let certificate_pem = certified.cert.pem();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        let chain: Vec<CertificateDer<'static>> = vec![certified.cert.der().clone()];
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate");
        let acceptor = TlsAcceptor::from(Arc::new(tls));

        let mut session = SessionBuilder::new("carillon-test-smtp");
        if self.security == Security::StartTls {
            session.enable_start_tls();
        }
        if self.auth.is_some() {
            for mechanism in &self.mechanisms {
                session.enable_auth(mechanism.clone());
            }
            if self.security == Security::Plain {
                session.insecure_enable_plaintext_auth();
            }
        }
        let shared = Arc::new(Shared {
            auth: self.auth,
            ..Shared::default()
        });
        let task = tokio::spawn(accept_loop(
            listener,
            shared.clone(),
            session,
            acceptor,
            self.security,
        ));
        SmtpServer {
            addr,
            security: self.security,
            certificate_pem,
            shared,
            task,
        }
    }
}

/// A running SMTP server on 127.0.0.1.
#[derive(Debug)]
pub struct SmtpServer {
    addr: SocketAddr,
    security: Security,
    certificate_pem: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug, Default)]
struct Shared {
    auth: Option<(String, String)>,
    received: Mutex<Vec<Received>>,
    connections: AtomicUsize,
    auth_attempts: AtomicUsize,
    transactions: AtomicUsize,
    temporary_failures: AtomicUsize,
    rejected: Mutex<HashSet<String>>,
}

impl SmtpServer {
    /// A server with this security, no AUTH.
    pub fn builder(security: Security) -> Builder {
        Builder {
            security,
            auth: None,
            mechanisms: vec![AuthMechanism::Plain, AuthMechanism::Login],
        }
    }

    /// Starts a server with this security and no AUTH.
    pub async fn start(security: Security) -> SmtpServer {
        Self::builder(security).start().await
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Its security.
    pub fn security(&self) -> Security {
        self.security
    }

    /// Its self-signed certificate (for `localhost` and `127.0.0.1`), PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// Answers RCPT TO in the next `n` transactions with 451, as
    /// greylisting does. (At RCPT rather than after DATA: mailin keeps its
    /// DATA state after a negative final reply, which a real server does
    /// not.)
    pub fn fail_next(&self, n: usize) {
        self.shared.temporary_failures.store(n, Ordering::SeqCst);
    }

    /// Answers RCPT TO for this address with 550.
    pub fn reject_recipient(&self, address: &str) {
        lock(&self.shared.rejected).insert(address.to_ascii_lowercase());
    }

    /// Every accepted message, in order.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.shared.received).clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// AUTH attempts so far (successful or not).
    pub fn auth_attempts(&self) -> usize {
        self.shared.auth_attempts.load(Ordering::SeqCst)
    }

    /// Transactions started (MAIL FROM), accepted or not.
    pub fn transactions(&self) -> usize {
        self.shared.transactions.load(Ordering::SeqCst)
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    session: SessionBuilder,
    acceptor: TlsAcceptor,
    security: Security,
) {
    // Dropping the set (when this task is aborted) ends every connection.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let (shared, session, acceptor) = (shared.clone(), session.clone(), acceptor.clone());
                connections.spawn(async move {
                    // A client hanging up mid-session is not a server error.
                    let _ = serve(stream, peer.ip(), shared, session, acceptor, security).await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Per-connection state shared with the handler.
#[derive(Debug, Default)]
struct Connection {
    tls: AtomicBool,
    user: Mutex<Option<String>>,
}

/// The mailin handler: one per connection.
struct Recorder {
    shared: Arc<Shared>,
    connection: Arc<Connection>,
    helo: String,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
    /// This transaction's recipients are answered with 451.
    defer: bool,
}

impl Handler for Recorder {
    fn helo(&mut self, _ip: IpAddr, domain: &str) -> Response {
        self.helo = domain.to_owned();
        mailin::response::OK
    }

    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.shared.transactions.fetch_add(1, Ordering::SeqCst);
        self.defer = self
            .shared
            .temporary_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        self.from = from.to_owned();
        self.to.clear();
        self.data.clear();
        mailin::response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        if self.defer {
            return Response::custom(451, "4.7.1 Greylisted, please try again later".into());
        }
        if lock(&self.shared.rejected).contains(&to.to_ascii_lowercase()) {
            return Response::custom(
                550,
                format!("5.1.1 <{to}>: Recipient address rejected: User unknown"),
            );
        }
        self.to.push(to.to_owned());
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mut received = lock(&self.shared.received);
        received.push(Received {
            from: self.from.clone(),
            to: self.to.clone(),
            data: std::mem::take(&mut self.data),
            tls: self.connection.tls.load(Ordering::SeqCst),
            user: lock(&self.connection.user).clone(),
            helo: self.helo.clone(),
        });
        Response::custom(250, format!("2.0.0 Ok: queued as T{}", received.len()))
    }

    fn auth_plain(&mut self, _authorization: &str, user: &str, password: &str) -> Response {
        self.authenticate(user, password)
    }

    fn auth_login(&mut self, user: &str, password: &str) -> Response {
        self.authenticate(user, password)
    }
}

impl Recorder {
    fn authenticate(&mut self, user: &str, password: &str) -> Response {
        self.shared.auth_attempts.fetch_add(1, Ordering::SeqCst);
        match &self.shared.auth {
            Some((u, p)) if u == user && p == password => {
                *lock(&self.connection.user) = Some(user.to_owned());
                mailin::response::AUTH_OK
            }
            _ => mailin::response::INVALID_CREDENTIALS,
        }
    }
}

async fn serve(
    stream: TcpStream,
    peer: IpAddr,
    shared: Arc<Shared>,
    builder: SessionBuilder,
    acceptor: TlsAcceptor,
    security: Security,
) -> io::Result<()> {
    let connection = Arc::new(Connection::default());
    let recorder = Recorder {
        shared,
        connection: connection.clone(),
        helo: String::new(),
        from: String::new(),
        to: Vec::new(),
        data: Vec::new(),
        defer: false,
    };
    let mut session = builder.build(peer, recorder);
    if security == Security::ImplicitTls {
        let tls = acceptor.accept(stream).await?;
        connection.tls.store(true, Ordering::SeqCst);
        session.tls_active();
        let mut reader = BufReader::new(tls);
        write(&mut reader, &session.greeting()).await?;
        converse(&mut session, &mut reader).await?;
        return Ok(());
    }
    let mut reader = BufReader::new(stream);
    write(&mut reader, &session.greeting()).await?;
    if converse(&mut session, &mut reader).await? == Ended::UpgradeTls {
        // The client waits for the 220 before its handshake, so nothing is
        // left in the buffer.
        let tls = acceptor.accept(reader.into_inner()).await?;
        connection.tls.store(true, Ordering::SeqCst);
        session.tls_active();
        converse(&mut session, &mut BufReader::new(tls)).await?;
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Closed,
    UpgradeTls,
}

async fn converse<S, H>(
    session: &mut mailin::Session<H>,
    stream: &mut BufReader<S>,
) -> io::Result<Ended>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Handler,
{
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        if stream.read_until(b'\n', &mut line).await? == 0 {
            return Ok(Ended::Closed);
        }
        let response = session.process(&line);
        match response.action {
            Action::Reply => write(stream, &response).await?,
            Action::Close => {
                write(stream, &response).await?;
                return Ok(Ended::Closed);
            }
            Action::UpgradeTls => {
                write(stream, &response).await?;
                return Ok(Ended::UpgradeTls);
            }
            Action::NoReply => {}
        }
    }
}

async fn write<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    response: &Response,
) -> io::Result<()> {
    let bytes = response.buffer()?;
    let inner = stream.get_mut();
    inner.write_all(&bytes).await?;
    inner.flush().await
}
