//! The `instance` label of a PostgreSQL target: the server's address `host:port` taken from
//! the DSN (key=value or URL form), never its credentials, so two servers watched by one
//! agent are two series sets, as with one postgres_exporter per server.

use tokio_postgres::config::Host;

/// libpq's default port.
const DEFAULT_PORT: u16 = 5432;

/// `host:port` of the first host of `dsn` (default port 5432). A Unix socket directory gives
/// `localhost:<port>` (the same server seen over TCP on this machine); a DSN that names no
/// host (libpq's default socket) gives `localhost:5432`. An unparsable DSN gives the DSN's
/// `host=` value if it has one, else `localhost:5432`, so the label never holds a password.
pub fn instance_of(dsn: &str) -> String {
    let Ok(config) = dsn.parse::<tokio_postgres::Config>() else {
        return fallback(dsn);
    };
    let port = config.get_ports().first().copied().unwrap_or(DEFAULT_PORT);
    match config.get_hosts().first() {
        Some(Host::Tcp(host)) => join(host, port),
        _ => join("localhost", port),
    }
}

/// `host:port`, with brackets around an IPv6 address.
fn join(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The `host=` (and `port=`) of a key=value DSN that did not parse.
fn fallback(dsn: &str) -> String {
    let mut host = "localhost";
    let mut port = DEFAULT_PORT;
    for part in dsn.split_whitespace() {
        if let Some(h) = part.strip_prefix("host=") {
            if !h.starts_with('/') && !h.is_empty() {
                host = h;
            }
        } else if let Some(p) = part.strip_prefix("port=") {
            port = p.parse().unwrap_or(DEFAULT_PORT);
        }
    }
    join(host, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_and_url_forms() {
        assert_eq!(
            instance_of("host=db1 port=5433 user=u password=secret dbname=x"),
            "db1:5433"
        );
        assert_eq!(instance_of("host=10.0.0.5 user=u"), "10.0.0.5:5432");
        assert_eq!(instance_of("postgres://u:pw@db2:6432/app"), "db2:6432");
        assert_eq!(instance_of("postgresql://u:pw@db3/app"), "db3:5432");
        assert_eq!(instance_of("postgres://u@[::1]:5434/app"), "[::1]:5434");
    }

    #[test]
    fn sockets_and_defaults() {
        assert_eq!(
            instance_of("host=/var/run/postgresql port=5435 user=postgres"),
            "localhost:5435"
        );
        assert_eq!(instance_of("user=postgres dbname=app"), "localhost:5432");
    }

    #[test]
    fn unparsable_dsn_keeps_no_secret() {
        let got = instance_of("host=db9 port=5439 password=hunter2 sslmode=bogus");
        assert_eq!(got, "db9:5439");
    }
}
