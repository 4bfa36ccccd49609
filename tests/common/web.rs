//! A plain HTTPS client for the web portal's tests: tokio-rustls presenting a member's
//! certificate (or none), HTTP/2 by hyper's own client, no browser.
use std::{net::SocketAddr, sync::Arc};

use bytes::Bytes;
use cbm_hub::tls::devpki::Issued;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};

/// One connection to the portal.
pub struct WebClient {
    send: Sender,
}

enum Sender {
    H2(SendRequest<Empty<Bytes>>),
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
}

/// A response: status, headers, body as text.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Connects to the portal at `addr` trusting `ca_pem`, presenting `cert` (None: no
/// certificate). Err when the TLS handshake or the HTTP/2 preface fails.
pub async fn connect(
    addr: SocketAddr,
    ca_pem: &str,
    cert: Option<&Issued>,
) -> Result<WebClient, String> {
    let tls = tls(addr, ca_pem, cert, b"h2").await?;
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(WebClient {
        send: Sender::H2(send),
    })
}

/// The same over HTTP/1.1 (ALPN `http/1.1` only).
pub async fn connect_http1(
    addr: SocketAddr,
    ca_pem: &str,
    cert: &Issued,
) -> Result<WebClient, String> {
    let tls = tls(addr, ca_pem, Some(cert), b"http/1.1").await?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(WebClient {
        send: Sender::H1(send),
    })
}

async fn tls(
    addr: SocketAddr,
    ca_pem: &str,
    cert: Option<&Issued>,
    alpn: &[u8],
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    cbm_hub::tls::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca_pem) {
        roots.add(c).unwrap();
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let mut config = match cert {
        Some(c) => {
            let key = PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).unwrap();
            builder
                .with_client_auth_cert(certs(&c.cert_pem), key)
                .unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())
}

impl WebClient {
    /// Sends `method path`; Err when the connection fails (a refused certificate).
    pub async fn request(&mut self, method: Method, path: &str) -> Result<Page, String> {
        let req = Request::builder()
            .method(method)
            .uri(format!("https://localhost{path}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = match &mut self.send {
            Sender::H2(s) => {
                s.ready().await.map_err(|e| e.to_string())?;
                s.send_request(req).await
            }
            Sender::H1(s) => {
                s.ready().await.map_err(|e| e.to_string())?;
                let (mut parts, body) = req.into_parts();
                // HTTP/1.1 names the host in a header and the path alone in the request line.
                parts.uri = path.parse().unwrap();
                parts
                    .headers
                    .insert(http::header::HOST, "localhost".parse().unwrap());
                s.send_request(Request::from_parts(parts, body)).await
            }
        }
        .map_err(|e| e.to_string())?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Page {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.request(Method::GET, path)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}
