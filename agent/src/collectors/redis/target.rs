//! Who a `[[redis]]` section watches: the client (plain or TLS with a private CA), the URL
//! without its password for logs, and the `instance` label (`host:port`) every series of
//! that server carries, shared by the Redis collector and the Celery event listener.

use redis::ConnectionAddr;

use crate::config::RedisConfig;
use crate::error::CollectError;

/// One Redis server as named in logs and labels.
#[derive(Clone)]
pub struct RedisTarget {
    /// The client, opened lazily by its users.
    pub client: redis::Client,
    /// The URL without a password, for logs and collector names.
    pub redacted: String,
    /// The `instance` label: `host:port`, or the socket path of a unix socket.
    pub instance: String,
    /// The database number of the URL.
    pub db: i64,
}

impl RedisTarget {
    /// The target of `config.url`; fails only if the URL or the CA file is bad.
    pub fn new(config: &RedisConfig) -> Result<RedisTarget, CollectError> {
        let redacted = redact(&config.url);
        let bad = |why: String| CollectError::Target {
            target: redacted.clone(),
            why,
        };
        let client = if config.tls_ca_file.is_empty() {
            redis::Client::open(config.url.as_str()).map_err(|e| bad(e.to_string()))?
        } else {
            let root_cert = crate::tls::read_ca(&config.tls_ca_file).map_err(bad)?;
            let certs = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            };
            redis::Client::build_with_tls(config.url.as_str(), certs).map_err(|e| bad(e.to_string()))?
        };
        let info = client.get_connection_info();
        let instance = instance_of(info.addr());
        let db = info.redis_settings().db();
        Ok(RedisTarget {
            client,
            redacted,
            instance,
            db,
        })
    }
}

/// `host:port` of a TCP address (IPv6 hosts in brackets), the path of a unix socket.
pub fn instance_of(addr: &ConnectionAddr) -> String {
    let host_port = |host: &str, port: u16| {
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    };
    match addr {
        ConnectionAddr::Tcp(host, port) => host_port(host, *port),
        ConnectionAddr::TcpTls { host, port, .. } => host_port(host, *port),
        ConnectionAddr::Unix(path) => path.display().to_string(),
        other => other.to_string(),
    }
}

/// The URL without a password.
pub fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://{}", &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// Adds `instance` to every sample that has none.
pub fn label_instance(samples: &mut [crate::model::Sample], instance: &str) {
    for s in samples {
        if s.label("instance").is_none() {
            s.labels.push(("instance".to_string(), instance.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn target(url: &str) -> RedisTarget {
        let config: RedisConfig = toml::from_str(&format!("url = {url:?}")).unwrap();
        RedisTarget::new(&config).unwrap()
    }

    #[test]
    fn instance_is_host_and_port_without_credentials() {
        let t = target("redis://:pw@cache.internal/3");
        assert_eq!(t.instance, "cache.internal:6379");
        assert_eq!(t.db, 3);
        assert_eq!(t.redacted, "redis://cache.internal/3");
        assert_eq!(target("redis://127.0.0.1:7000").instance, "127.0.0.1:7000");
        assert_eq!(target("redis+unix:///run/redis.sock").instance, "/run/redis.sock");
        assert_eq!(redact("redis://:pw@h:1/0"), "redis://h:1/0");
    }
}
