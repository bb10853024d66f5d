//! How a client checks the coordinator's certificate: a CA it trusts (certificates a site
//! issues itself), or the SHA-256 fingerprint of the one certificate it expects (the
//! self-signed certificate a coordinator makes at start, pinned by the workers Strom launches
//! and by `strom attach --tls-pin`).
//!
//! Pinning needs no CA, no host name and no files: the fingerprint travels with the token.
//! The handshake is still verified (the coordinator proves it holds the certificate's key);
//! only the chain-of-trust check is replaced by "is it exactly this certificate".

use std::fmt;
use std::future::Future;
use std::pin::Pin as StdPin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::{
    CryptoProvider, ring as provider, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, Error as TlsError, SignatureScheme};
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// The SHA-256 fingerprint of a certificate (its DER encoding).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pin([u8; 32]);

impl Pin {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(der: &[u8]) -> Pin {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Pin(out)
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a fingerprint did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected a SHA-256 fingerprint: `sha256:` and 64 hex digits (colons allowed), as the coordinator prints it; {0}"
)]
pub struct BadPin(String);

impl FromStr for Pin {
    type Err = BadPin;

    fn from_str(s: &str) -> Result<Pin, BadPin> {
        let hex = s.trim();
        let hex = hex.strip_prefix("sha256:").or_else(|| hex.strip_prefix("SHA256:")).unwrap_or(hex);
        let digits: Vec<u8> = hex.bytes().filter(|b| *b != b':').collect();
        if digits.len() != 64 {
            return Err(BadPin(format!("got {} hex digits", digits.len())));
        }
        let mut out = [0u8; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|_| BadPin("not hex".into()))?;
            out[i] = u8::from_str_radix(text, 16).map_err(|_| BadPin(format!("`{text}` is not hex")))?;
        }
        Ok(Pin(out))
    }
}

/// How a client checks the coordinator's certificate.
#[derive(Clone, Debug)]
pub enum ClientTls {
    /// Trust certificates issued by this CA, for this name.
    Ca(ClientTlsConfig),
    /// Trust exactly the certificate with this fingerprint.
    Pin(Pin),
}

/// An endpoint for `url` under `tls`. A pinned connection does its own TLS, so tonic sees a
/// plain `http://` endpoint over it.
pub fn endpoint(url: &str, tls: Option<&ClientTls>) -> Result<Endpoint, tonic::transport::Error> {
    match tls {
        None => Endpoint::from_shared(url.to_string()),
        Some(ClientTls::Ca(config)) => Endpoint::from_shared(url.to_string())?.tls_config(config.clone()),
        Some(ClientTls::Pin(_)) => {
            let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
            Endpoint::from_shared(format!("http://{rest}"))
        }
    }
}

/// Connects an endpoint made by [`endpoint`] with the same `tls`.
pub async fn connect(ep: &Endpoint, tls: Option<&ClientTls>) -> Result<Channel, tonic::transport::Error> {
    match tls {
        Some(ClientTls::Pin(pin)) => ep.connect_with_connector(PinnedConnector::new(*pin)).await,
        _ => ep.connect().await,
    }
}

/// Like [`connect`], connecting on first use.
pub fn connect_lazy(ep: &Endpoint, tls: Option<&ClientTls>) -> Channel {
    match tls {
        Some(ClientTls::Pin(pin)) => ep.connect_with_connector_lazy(PinnedConnector::new(*pin)),
        _ => ep.connect_lazy(),
    }
}

/// TCP, then TLS that accepts exactly the pinned certificate.
#[derive(Clone)]
pub struct PinnedConnector {
    tls: TlsConnector,
}

impl PinnedConnector {
    pub fn new(pin: Pin) -> PinnedConnector {
        let provider = Arc::new(provider::default_provider());
        let verifier = Arc::new(PinVerifier { pin, provider: provider.clone() });
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth());
        if let Ok(c) = &mut config {
            c.alpn_protocols = vec![b"h2".to_vec()];
        }
        // The ring provider supports the default protocol versions: this cannot fail.
        let config = config.unwrap_or_else(|e| panic!("rustls with ring: {e}"));
        PinnedConnector { tls: TlsConnector::from(Arc::new(config)) }
    }
}

type Connecting =
    StdPin<Box<dyn Future<Output = Result<TokioIo<TlsStream<TcpStream>>, std::io::Error>> + Send>>;

impl tower_service::Service<Uri> for PinnedConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = self.tls.clone();
        Box::pin(async move {
            let bad =
                || std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("no host:port in {uri}"));
            let host = uri.host().ok_or_else(bad)?.trim_start_matches('[').trim_end_matches(']').to_string();
            let port = uri.port_u16().ok_or_else(bad)?;
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            let _ = tcp.set_nodelay(true);
            // The name is not checked (the pin is); rustls needs one to send.
            let name = ServerName::try_from(host.clone())
                .unwrap_or_else(|_| ServerName::try_from("strom-coordinator").expect("a valid DNS name"));
            Ok(TokioIo::new(tls.connect(name.to_owned(), tcp).await?))
        })
    }
}

#[derive(Debug)]
struct PinVerifier {
    pin: Pin,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        let got = Pin::of(end_entity.as_ref());
        if got == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(TlsError::General(format!(
                "the coordinator's certificate is {got}, not the pinned {} (a different coordinator, \
                 or a restarted one with a new certificate: use the fingerprint it printed)",
                self.pin
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// What to tell a client that spoke plaintext to `url` (an `http://` URL) when
/// [`answers_tls`] found the server serves TLS. Workers and the cockpit say the same.
pub fn serves_tls(url: &str) -> String {
    let https = url.replacen("http://", "https://", 1);
    format!(
        "the coordinator at {url} serves TLS, not plaintext: use {https} with --tls-pin sha256:... \
         (the coordinator prints its `tls pin:` line at start) or --tls-ca"
    )
}

/// What to tell a TLS client of `url` (an `https://` URL) whose handshake `error` says the
/// server answered in plaintext; `None` when it says something else.
pub fn serves_plaintext(url: &str, error: &str) -> Option<String> {
    if !url.starts_with("https://")
        || !(error.contains("InvalidContentType") || error.contains("corrupt message"))
    {
        return None;
    }
    let http = url.replacen("https://", "http://", 1);
    Some(format!(
        "the coordinator at {url} serves plaintext, not TLS: use {http} (a coordinator on loopback, \
         or one started with --insecure-plaintext)"
    ))
}

/// Whether the server at a plaintext `http://` URL answers the HTTP/2 preface with a TLS alert
/// record (content type 21, version 3.x): it serves TLS, and the client should use `https://`
/// with a pin or a CA. Bounded: two seconds at most. (Workers and the cockpit ask it when a
/// plaintext call comes back garbled.)
pub async fn answers_tls(url: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let authority = rest.split('/').next().unwrap_or_default().to_string();
    let probe = async move {
        let mut s = tokio::net::TcpStream::connect(authority).await.ok()?;
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.ok()?;
        let mut head = [0u8; 2];
        s.read_exact(&mut head).await.ok()?;
        Some(head == [0x15, 0x03])
    };
    matches!(tokio::time::timeout(std::time::Duration::from_secs(2), probe).await, Ok(Some(true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_prints_and_parses_back_in_every_accepted_spelling() {
        let pin = Pin::of(b"certificate");
        let text = pin.to_string();
        assert!(text.starts_with("sha256:") && text.len() == 7 + 64, "{text}");
        assert_eq!(text.parse::<Pin>(), Ok(pin));
        let bare = &text[7..];
        assert_eq!(bare.parse::<Pin>(), Ok(pin));
        let colons: Vec<String> =
            bare.as_bytes().chunks(2).map(|c| String::from_utf8_lossy(c).to_uppercase()).collect();
        assert_eq!(format!("SHA256:{}", colons.join(":")).parse::<Pin>(), Ok(pin));
    }

    #[test]
    fn a_bad_pin_says_what_was_expected() {
        let e = "sha256:abcd".parse::<Pin>().unwrap_err().to_string();
        assert!(e.contains("64 hex digits") && e.contains("got 4"), "{e}");
        let e = format!("sha256:{}", "zz".repeat(32)).parse::<Pin>().unwrap_err().to_string();
        assert!(e.contains("`zz` is not hex"), "{e}");
    }
}
