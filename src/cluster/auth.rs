//! Credentials: the worker token (join and train), the control token (the cockpit: submit,
//! pause, stop, add or remove workers), both bearer tokens checked in constant time on every
//! call; per-session worker secrets, so a worker can only ever speak for itself; token files
//! created exclusively in private directories; and TLS from PEM files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strom_proto::tls::{ClientTls, Pin};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
use tonic::{Request, Status};

use super::ClusterError;

/// Reads a token file: its content without surrounding white space, which must not be empty.
pub fn read_token_file(path: &Path) -> Result<String, ClusterError> {
    let err = |message: String| ClusterError::Token { path: path.display().to_string(), message };
    // "-": the token comes on stdin (how the SSH launcher hands it over).
    let text = if path.as_os_str() == "-" {
        let mut t = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut t).map_err(|e| err(e.to_string()))?;
        t
    } else {
        std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?
    };
    let token = text.trim();
    if token.is_empty() {
        return Err(err("is empty".into()));
    }
    if token.len() < 16 {
        return Err(err(format!("the token has {} characters; use at least 16", token.len())));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(err("the token must be printable ASCII without spaces".into()));
    }
    Ok(token.to_string())
}

/// A fresh random token (hex of 32 bytes from the OS).
pub fn generate_token() -> Result<String, ClusterError> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| ClusterError::Config(format!("cannot read /dev/urandom for a token: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes a token to a new file readable by its owner only. The file must not exist yet
/// (O_EXCL): a file or link planted at that path is never written through.
pub fn write_token_file(path: &Path, token: &str) -> Result<(), ClusterError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err =
        |e: std::io::Error| ClusterError::Token { path: path.display().to_string(), message: e.to_string() };
    let mut f =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(err)?;
    f.write_all(token.as_bytes()).map_err(err)
}

/// A private directory for token files: a fresh random name, mode 0700, removed with
/// everything in it when dropped.
pub struct TokenDir(tempfile::TempDir);

impl TokenDir {
    /// Under the system's temporary directory; the name starts with `prefix`.
    pub fn new(prefix: &str) -> Result<TokenDir, ClusterError> {
        use std::os::unix::fs::PermissionsExt;
        // Private whatever the umask or the temporary directory's defaults.
        tempfile::Builder::new()
            .prefix(prefix)
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()
            .map(TokenDir)
            .map_err(|e| ClusterError::Config(format!("cannot create a private directory for tokens: {e}")))
    }

    /// Writes `token` to a new file `name` in the directory; returns its path.
    pub fn write(&self, name: &str, token: &str) -> Result<PathBuf, ClusterError> {
        let path = self.0.path().join(name);
        write_token_file(&path, token)?;
        Ok(path)
    }
}

/// Equality that takes the same time wherever the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Server side: refuses calls without the right `authorization: Bearer <token>`, says when the
/// token is the other role's, and logs refusals (peer, reason) at most once per
/// [`REFUSAL_LOG_EVERY`] per service, with a count of those not logged.
#[derive(Clone)]
pub struct CheckToken {
    expected: Option<Arc<[u8]>>,
    /// The service, for the log: "workers" or "control".
    service: &'static str,
    /// The other role's bearer (the control token at the workers' service, and the reverse).
    other: Option<Arc<[u8]>>,
    log: Arc<std::sync::Mutex<(Option<std::time::Instant>, u64)>>,
}

/// How often a service logs a refused call (the rest are counted).
pub const REFUSAL_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

fn bearer(token: &str) -> Arc<[u8]> {
    Arc::from(format!("Bearer {token}").as_bytes())
}

impl CheckToken {
    pub fn new(token: Option<&str>) -> Self {
        CheckToken { expected: token.map(bearer), service: "", other: None, log: Arc::default() }
    }

    /// A check for `service` that recognises the other role's token (`other`).
    pub fn for_service(token: Option<&str>, service: &'static str, other: Option<&str>) -> Self {
        CheckToken {
            service,
            other: other.filter(|o| Some(*o) != token).map(bearer),
            ..CheckToken::new(token)
        }
    }

    fn refuse(&self, request: &Request<()>, status: Status) -> Status {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let due = log.0.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY);
        if due {
            let peer =
                request.remote_addr().map(|a| a.to_string()).unwrap_or_else(|| "an unknown peer".into());
            let more = if log.1 > 0 {
                format!(" ({} more refused since the last line)", log.1)
            } else {
                String::new()
            };
            tracing::warn!(
                "refused a call to the {} service from {peer}: {}{more}",
                self.service,
                status.message()
            );
            *log = (Some(std::time::Instant::now()), 0);
        } else {
            log.1 += 1;
        }
        status
    }
}

impl Interceptor for CheckToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.expected else { return Ok(request) };
        let status = match request.metadata().get(strom_proto::AUTHORIZATION) {
            Some(v) if constant_time_eq(v.as_bytes(), expected) => return Ok(request),
            Some(v) if self.other.as_ref().is_some_and(|o| constant_time_eq(v.as_bytes(), o)) => {
                Status::permission_denied(match self.service {
                    "control" => {
                        "wrong role: this is the workers' token; the cockpit (strom attach) needs the \
                                  control token (the file given to the coordinator's --control-token-file)"
                    }
                    _ => {
                        "wrong role: this is the control token; workers need the workers' token \
                          (the file given to the coordinator's --token-file)"
                    }
                })
            }
            Some(_) => Status::unauthenticated("wrong token: check --token-file"),
            None => Status::unauthenticated("this coordinator needs a token: pass --token-file"),
        };
        Err(self.refuse(&request, status))
    }
}

/// Metadata naming the worker on every call after it joined ...
pub const WORKER_ID: &str = "strom-worker-id";
/// ... and proving it is that worker: the secret its join returned.
pub const WORKER_SECRET: &str = "strom-worker-secret";

/// A worker's client after it joined: the token, its id and its session secret on every call.
#[derive(Clone)]
pub struct WorkerSession {
    bearer: Option<MetadataValue<Ascii>>,
    id: MetadataValue<Ascii>,
    secret: MetadataValue<Ascii>,
}

impl WorkerSession {
    pub fn new(token: &AttachToken, id: u32, secret: &str) -> Result<Self, ClusterError> {
        let bad =
            |_| ClusterError::Config("the coordinator sent a session secret that is not a header".into());
        Ok(WorkerSession {
            bearer: token.header.clone(),
            id: id.to_string().parse().map_err(bad)?,
            secret: secret.parse().map_err(bad)?,
        })
    }
}

impl Interceptor for WorkerSession {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let md = request.metadata_mut();
        if let Some(h) = &self.bearer {
            md.insert(strom_proto::AUTHORIZATION, h.clone());
        }
        md.insert(WORKER_ID, self.id.clone());
        md.insert(WORKER_SECRET, self.secret.clone());
        Ok(request)
    }
}

/// Client side: adds the token to every call.
#[derive(Clone)]
pub struct AttachToken {
    header: Option<MetadataValue<Ascii>>,
}

impl AttachToken {
    pub fn new(token: Option<&str>) -> Result<Self, ClusterError> {
        let header = match token {
            Some(t) => Some(
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| ClusterError::Config("the token is not valid in a header".into()))?,
            ),
            None => None,
        };
        Ok(AttachToken { header })
    }
}

impl Interceptor for AttachToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(h) = &self.header {
            request.metadata_mut().insert(strom_proto::AUTHORIZATION, h.clone());
        }
        Ok(request)
    }
}

/// Certificate and key (PEM) of a coordinator that serves TLS.
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ServerTls {
    pub fn config(&self) -> Result<ServerTlsConfig, ClusterError> {
        let read =
            |p: &Path| std::fs::read(p).map_err(|e| ClusterError::Tls(format!("{}: {e}", p.display())));
        Ok(ServerTlsConfig::new().identity(Identity::from_pem(read(&self.cert)?, read(&self.key)?)))
    }
}

/// A certificate made now, signed by its own key, for a coordinator that serves TLS without
/// certificate files; clients pin its fingerprint. The names matter only to clients that check
/// them (`--tls-ca` with the PEM the coordinator can write); pinning clients do not.
pub fn self_signed(names: Vec<String>) -> Result<(ServerTlsConfig, Pin), ClusterError> {
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|e| ClusterError::Tls(format!("cannot make a self-signed certificate: {e}")))?;
    let pin = Pin::of(made.cert.der());
    let identity = Identity::from_pem(made.cert.pem(), made.signing_key.serialize_pem());
    Ok((ServerTlsConfig::new().identity(identity), pin))
}

/// How a client given `--tls-ca [--tls-domain]` or `--tls-pin` checks the coordinator at `url`.
pub fn client_tls(
    url: &str,
    ca: Option<&Path>,
    domain: Option<&str>,
    pin: Option<&str>,
) -> Result<Option<ClientTls>, ClusterError> {
    match (ca, pin) {
        (Some(_), Some(_)) => Err(ClusterError::Config("--tls-ca and --tls-pin: give one of them".into())),
        (None, Some(pin)) => {
            let pin =
                pin.parse::<Pin>().map_err(|e| ClusterError::Config(format!("--tls-pin {pin}: {e}")))?;
            Ok(Some(ClientTls::Pin(pin)))
        }
        (Some(ca), None) => {
            let domain = domain.map(str::to_string).unwrap_or_else(|| {
                url.split("://")
                    .nth(1)
                    .and_then(|r| r.split([':', '/']).next())
                    .unwrap_or("localhost")
                    .to_string()
            });
            let pem = std::fs::read(ca).map_err(|e| ClusterError::Tls(format!("{}: {e}", ca.display())))?;
            let config =
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)).domain_name(domain);
            Ok(Some(ClientTls::Ca(config)))
        }
        (None, None) if url.starts_with("https://") => Err(ClusterError::Config(format!(
            "{url} serves TLS: pass --tls-pin with the fingerprint the coordinator printed (`tls pin: \
             sha256:...`), or --tls-ca with the CA of its certificate"
        ))),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn interceptor_checks_the_bearer_token() {
        let mut check = CheckToken::new(Some("0123456789abcdef"));
        let mut attach = AttachToken::new(Some("0123456789abcdef")).unwrap();
        assert!(check.call(attach.call(Request::new(())).unwrap()).is_ok());
        let mut wrong = AttachToken::new(Some("fedcba9876543210")).unwrap();
        let e = check.call(wrong.call(Request::new(())).unwrap()).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert!(check.call(Request::new(())).unwrap_err().message().contains("needs a token"));
        assert!(CheckToken::new(None).call(Request::new(())).is_ok());
    }

    #[test]
    fn token_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        std::fs::write(&p, "  \n").unwrap();
        assert!(read_token_file(&p).unwrap_err().to_string().contains("is empty"));
        std::fs::write(&p, "short").unwrap();
        assert!(read_token_file(&p).unwrap_err().to_string().contains("at least 16"));
        let t = generate_token().unwrap();
        assert!(write_token_file(&p, &t).is_err(), "an existing file is never written through");
        let tokens = TokenDir::new("strom-test-").unwrap();
        let p = tokens.write("token", &t).unwrap();
        assert_eq!(read_token_file(&p).unwrap(), t);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let dir = p.parent().unwrap().to_path_buf();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        drop(tokens);
        assert!(!dir.exists(), "the directory goes with its tokens");
    }
}
