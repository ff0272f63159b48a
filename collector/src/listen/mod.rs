//! How the three listeners (HTTP, OTLP/HTTP, OTLP/gRPC) accept and serve connections: TLS
//! from reloadable certificate files (`tls`), a bound on concurrent connections, handshake,
//! header, body and idle timeouts (`serve`, `activity`, `body_timeout`), the security headers
//! of the UI/API port (`headers`) and the file-descriptor limit (`nofile`). Issue 13 found that
//! ~1,000 stalled uploads took every listener down; this module is what stops that.

pub mod activity;
pub mod body_timeout;
pub mod headers;
pub mod nofile;
pub mod serve;
pub mod tls;
