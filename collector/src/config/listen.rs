//! Config keys of the listeners (`[listen]`: connection limits and timeouts) and of TLS
//! (`[tls]`: certificate files, client certificates), documented in `docs/configuration.md`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use didban_base::parse_duration;

/// `[listen]`: what keeps slow, stalled or idle clients from taking a listener down. Each of
/// the three listeners (HTTP, OTLP/HTTP, OTLP/gRPC) applies these on its own.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    /// Most connections served at once per listener; past it new connections wait in the
    /// kernel's accept queue until one closes (none is refused by us).
    pub max_connections: usize,
    /// Time a client has to complete the TLS handshake and to send a request's line and headers.
    pub header_read_timeout: Duration,
    /// Time a client has to send a whole request body once its headers are in; past it the
    /// request is answered 408 and the connection closed.
    pub request_body_timeout: Duration,
    /// A connection with no request in progress and no byte moving for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            request_body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// One of the server's listeners, as named in `[tls]` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerName {
    /// `http_addr`: UI, query APIs, remote_write.
    Http,
    /// `otlp_http_addr`.
    OtlpHttp,
    /// `otlp_grpc_addr`.
    OtlpGrpc,
}

impl ListenerName {
    /// The config key of this listener's address.
    pub fn key(self) -> &'static str {
        match self {
            ListenerName::Http => "http_addr",
            ListenerName::OtlpHttp => "otlp_http_addr",
            ListenerName::OtlpGrpc => "otlp_grpc_addr",
        }
    }
}

/// `[tls]`: TLS with rustls on the listeners, from PEM files re-read when they change.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// The server's certificate chain (leaf first); empty = no TLS.
    pub cert_file: Option<PathBuf>,
    /// The private key of `cert_file` (PKCS#8, PKCS#1 or SEC1 PEM).
    pub key_file: Option<PathBuf>,
    /// CAs whose client certificates are accepted (mTLS); `None` = no client certificates.
    pub client_ca_file: Option<PathBuf>,
    /// Listeners served over TLS (all three by default).
    pub listeners: Vec<ListenerName>,
    /// Listeners that refuse a handshake without a client certificate signed by
    /// `client_ca_file` (both OTLP listeners by default: agents, not browsers).
    pub client_auth: Vec<ListenerName>,
    /// How often the files' modification times are checked (SIGHUP checks at once).
    pub reload_interval: Duration,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: None,
            key_file: None,
            client_ca_file: None,
            listeners: vec![ListenerName::Http, ListenerName::OtlpHttp, ListenerName::OtlpGrpc],
            client_auth: vec![ListenerName::OtlpHttp, ListenerName::OtlpGrpc],
            reload_interval: Duration::from_secs(5),
        }
    }
}

impl TlsConfig {
    /// Whether `listener` is served over TLS.
    pub fn on(&self, listener: ListenerName) -> bool {
        self.cert_file.is_some() && self.listeners.contains(&listener)
    }

    /// Whether `listener` requires a client certificate.
    pub fn client_auth_on(&self, listener: ListenerName) -> bool {
        self.on(listener) && self.client_ca_file.is_some() && self.client_auth.contains(&listener)
    }
}

/// `[listen]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileListen {
    max_connections: Option<usize>,
    header_read_timeout: Option<String>,
    request_body_timeout: Option<String>,
    idle_timeout: Option<String>,
}

impl FileListen {
    /// Writes the keys present over `c`; errors name the key.
    pub fn apply(self, c: &mut ListenConfig) -> anyhow::Result<()> {
        if let Some(v) = self.max_connections {
            if v == 0 {
                bail!("listen.max_connections must be greater than 0");
            }
            c.max_connections = v;
        }
        set_timeout(
            &mut c.header_read_timeout,
            self.header_read_timeout,
            "listen.header_read_timeout",
        )?;
        set_timeout(
            &mut c.request_body_timeout,
            self.request_body_timeout,
            "listen.request_body_timeout",
        )?;
        set_timeout(&mut c.idle_timeout, self.idle_timeout, "listen.idle_timeout")?;
        Ok(())
    }
}

fn set_timeout(target: &mut Duration, value: Option<String>, key: &str) -> anyhow::Result<()> {
    if let Some(v) = value {
        let d = parse_duration(&v).with_context(|| key.to_string())?;
        if d.is_zero() {
            bail!("{key} must be greater than 0 (got {v:?})");
        }
        *target = d;
    }
    Ok(())
}

/// `[tls]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_ca_file: Option<PathBuf>,
    listeners: Option<Vec<ListenerName>>,
    client_auth: Option<Vec<ListenerName>>,
    reload_interval: Option<String>,
}

impl FileTls {
    /// Writes the keys present over `c`: a certificate needs its key and the other way round.
    pub fn apply(self, c: &mut TlsConfig) -> anyhow::Result<()> {
        let nonempty = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
        c.cert_file = nonempty(self.cert_file);
        c.key_file = nonempty(self.key_file);
        c.client_ca_file = nonempty(self.client_ca_file);
        match (&c.cert_file, &c.key_file) {
            (Some(_), None) => bail!("tls.cert_file is set but tls.key_file is not"),
            (None, Some(_)) => bail!("tls.key_file is set but tls.cert_file is not"),
            (None, None) if c.client_ca_file.is_some() => {
                bail!("tls.client_ca_file needs tls.cert_file and tls.key_file")
            }
            _ => {}
        }
        if let Some(v) = self.listeners {
            c.listeners = v;
        }
        if let Some(v) = self.client_auth {
            c.client_auth = v;
        }
        set_timeout(
            &mut c.reload_interval,
            self.reload_interval,
            "tls.reload_interval",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tls(text: &str) -> anyhow::Result<TlsConfig> {
        let file: FileTls = toml::from_str(text)?;
        let mut c = TlsConfig::default();
        file.apply(&mut c)?;
        Ok(c)
    }

    #[test]
    fn tls_keys_and_their_checks() {
        let c = tls("cert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\nclient_ca_file = \"/ca.pem\"").unwrap();
        assert!(c.on(ListenerName::Http) && c.on(ListenerName::OtlpGrpc));
        assert!(!c.client_auth_on(ListenerName::Http));
        assert!(c.client_auth_on(ListenerName::OtlpHttp));
        let c = tls("cert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\nlisteners = [\"otlp_grpc\"]").unwrap();
        assert!(!c.on(ListenerName::Http) && c.on(ListenerName::OtlpGrpc));
        assert!(!TlsConfig::default().on(ListenerName::Http));
        let err = tls("cert_file = \"/c.pem\"").unwrap_err();
        assert!(format!("{err:#}").contains("tls.key_file"), "{err:#}");
        let err = tls("cert_file = \"/c.pem\"\nkey_file = \"/k\"\nlisteners = [\"ui\"]").unwrap_err();
        assert!(format!("{err:#}").contains("ui"), "{err:#}");
    }

    #[test]
    fn listen_keys_refuse_zero() {
        let mut c = ListenConfig::default();
        let file: FileListen = toml::from_str("request_body_timeout = \"2s\"\nmax_connections = 8").unwrap();
        file.apply(&mut c).unwrap();
        assert_eq!(c.request_body_timeout, Duration::from_secs(2));
        assert_eq!(c.max_connections, 8);
        let file: FileListen = toml::from_str("idle_timeout = \"0s\"").unwrap();
        let err = file.apply(&mut c).unwrap_err();
        assert!(format!("{err:#}").contains("listen.idle_timeout"), "{err:#}");
    }
}
