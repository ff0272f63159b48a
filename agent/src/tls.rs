//! TLS settings shared by the HTTP clients (export over HTTP, scrape, probes, RabbitMQ) and
//! the gRPC exporter: the system's CA store, plus an optional PEM bundle for private CAs (a
//! self-hosted collector with its own certificate); a rustls configuration for PostgreSQL; and
//! the certificate expiry read for `probe_ssl_earliest_cert_expiry`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// Reads a PEM bundle; the error names the file.
pub fn read_ca(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(Path::new(path)).map_err(|e| format!("reading tls_ca_file {path}: {e}"))
}

/// An HTTP client with `timeout`, trusting the system roots and, if `ca_file` is not empty, the
/// CAs in it. `tls_info` keeps the peer certificate for expiry checks.
pub fn http_client(
    timeout: std::time::Duration,
    ca_file: &str,
    tls_info: bool,
) -> Result<reqwest::Client, String> {
    client_with_identity(timeout, ca_file, tls_info, None)
}

/// A client certificate and its private key (PEM), presented to a collector that requires one.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    /// The certificate chain, leaf first.
    pub cert: Vec<u8>,
    /// Its private key.
    pub key: Vec<u8>,
}

/// The client certificate and key in `cert_file` and `key_file` (PEM), for a collector that
/// requires one (mTLS); `None` when both are empty. Errors name the file.
pub fn client_identity(cert_file: &str, key_file: &str) -> Result<Option<ClientIdentity>, String> {
    if cert_file.is_empty() && key_file.is_empty() {
        return Ok(None);
    }
    let cert = std::fs::read(cert_file).map_err(|e| format!("reading tls_cert_file {cert_file}: {e}"))?;
    let key = std::fs::read(key_file).map_err(|e| format!("reading tls_key_file {key_file}: {e}"))?;
    Ok(Some(ClientIdentity { cert, key }))
}

/// Like [`http_client`], presenting `identity` (certificate and key PEM) when the server asks
/// for a client certificate.
pub fn client_with_identity(
    timeout: std::time::Duration,
    ca_file: &str,
    tls_info: bool,
    identity: Option<&ClientIdentity>,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().timeout(timeout).tls_info(tls_info);
    if let Some(id) = identity {
        let mut pem = id.cert.clone();
        pem.push(b'\n');
        pem.extend_from_slice(&id.key);
        let id = reqwest::Identity::from_pem(&pem).map_err(|e| format!("tls_cert_file/tls_key_file: {e}"))?;
        builder = builder.identity(id);
    }
    if !ca_file.is_empty() {
        let pem = read_ca(ca_file)?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("tls_ca_file {ca_file}: {e}"))?;
        if certs.is_empty() {
            return Err(format!("tls_ca_file {ca_file}: no certificate in it"));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| e.to_string())
}

/// The system's CAs plus those in `ca_file` (if set); the error names the file.
fn root_store(ca_file: &str) -> Result<rustls::RootCertStore, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot use is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    if !ca_file.is_empty() {
        let pem = read_ca(ca_file)?;
        let mut added = 0;
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("tls_ca_file {ca_file}: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("tls_ca_file {ca_file}: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("tls_ca_file {ca_file}: no certificate in it"));
        }
    }
    Ok(roots)
}

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls client configuration trusting the system's CAs and those in `ca_file` (if set), for
/// connections made outside reqwest/tonic (PostgreSQL).
pub fn rustls_client(ca_file: &str) -> Result<rustls::ClientConfig, String> {
    let config = rustls::ClientConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(root_store(ca_file)?)
        .with_no_client_auth();
    Ok(config)
}

/// A server-certificate verifier that verifies exactly as webpki does and, on success,
/// remembers the earliest `notAfter` among the certificates the server presented (its own and
/// the intermediates it sent): what blackbox_exporter reports as
/// `probe_ssl_earliest_cert_expiry`, so an intermediate about to expire is seen before the
/// leaf.
#[derive(Debug)]
pub struct ChainExpiry {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    earliest: Mutex<Option<i64>>,
}

impl ChainExpiry {
    /// Takes the expiry recorded by the last successful handshake, leaving none.
    pub fn take(&self) -> Option<i64> {
        match self.earliest.lock() {
            Ok(mut g) => g.take(),
            Err(_) => None,
        }
    }
}

impl rustls::client::danger::ServerCertVerifier for ChainExpiry {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let verified =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        let mut earliest = not_after(end_entity);
        for cert in intermediates {
            if let Some(t) = not_after(cert) {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
        }
        if let Ok(mut g) = self.earliest.lock() {
            *g = earliest;
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// An HTTP client for health checks: like [`http_client`], but every request makes a fresh
/// connection (a probe measures the handshake too, and sees a renewed certificate at once)
/// and the returned [`ChainExpiry`] holds the earliest certificate expiry of the last
/// handshake.
pub fn probe_client(
    timeout: std::time::Duration,
    ca_file: &str,
) -> Result<(reqwest::Client, Arc<ChainExpiry>), String> {
    let provider = ring();
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(root_store(ca_file)?),
        provider.clone(),
    )
    .build()
    .map_err(|e| format!("TLS verifier: {e}"))?;
    let expiry = Arc::new(ChainExpiry {
        inner,
        earliest: Mutex::new(None),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(expiry.clone())
        .with_no_client_auth();
    // A resumed session skips certificate verification, and with it the expiry reading.
    config.resumption = rustls::client::Resumption::disabled();
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(0)
        .use_preconfigured_tls(config)
        .build()
        .map_err(|e| e.to_string())?;
    Ok((client, expiry))
}

/// Reads one DER TLV at `pos`: (tag, content range end, content start).
fn tlv(der: &[u8], pos: usize) -> Option<(u8, usize, usize)> {
    let tag = *der.get(pos)?;
    let first = *der.get(pos + 1)?;
    let (len, start) = if first < 0x80 {
        (usize::from(first), pos + 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*der.get(pos + 2 + i)?);
        }
        (len, pos + 2 + n)
    };
    let end = start.checked_add(len)?;
    if end > der.len() {
        return None;
    }
    Some((tag, end, start))
}

/// `notAfter` of a DER X.509 certificate, in seconds since the epoch.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (_, _, cert) = tlv(der, 0)?; // Certificate SEQUENCE
    let (_, tbs_end, mut pos) = tlv(der, cert)?; // tbsCertificate SEQUENCE
    let (tag, end, _) = tlv(der, pos)?;
    if tag == 0xa0 {
        pos = end; // [0] version
    }
    for _ in 0..3 {
        // serialNumber, signature, issuer
        let (_, end, _) = tlv(der, pos)?;
        pos = end;
    }
    if pos >= tbs_end {
        return None;
    }
    let (_, _, validity) = tlv(der, pos)?;
    let (_, not_before_end, _) = tlv(der, validity)?;
    let (tag, end, start) = tlv(der, not_before_end)?;
    let text = std::str::from_utf8(der.get(start..end)?).ok()?;
    let full = match tag {
        0x17 => {
            // UTCTime YYMMDDHHMMSSZ: years 50-99 are 19xx.
            let yy: u32 = text.get(0..2)?.parse().ok()?;
            format!("{}{text}", if yy >= 50 { "19" } else { "20" })
        }
        0x18 => text.to_string(),
        _ => return None,
    };
    let parsed = chrono::NaiveDateTime::parse_from_str(full.trim_end_matches('Z'), "%Y%m%d%H%M%S").ok()?;
    Some(parsed.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_walker_rejects_garbage() {
        assert_eq!(not_after(&[]), None);
        assert_eq!(not_after(&[0x30, 0x82, 0xff]), None);
        assert_eq!(not_after(&[0x30, 0x03, 0x30, 0x01, 0x00]), None);
    }
}
