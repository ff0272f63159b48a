//! One connection shared by a process's statements, opened on first use and opened again
//! by the next statement after it broke — so a database restart costs the statements that
//! were in flight, not the process.

use std::hash::{BuildHasher, Hasher};

use tokio_postgres::Client;

use crate::connect::{connect, ConnectOptions};
use crate::error::CoordError;

/// A lazily (re)connected client; statements take it in turn.
pub struct ReconnectingClient {
    url: String,
    options: ConnectOptions,
    client: tokio::sync::Mutex<Option<Client>>,
}

impl ReconnectingClient {
    /// A client for `url`; nothing connects until [`ReconnectingClient::get`].
    pub fn new(url: String, options: ConnectOptions) -> ReconnectingClient {
        ReconnectingClient {
            url,
            options,
            client: tokio::sync::Mutex::new(None),
        }
    }

    /// The connection, connecting first when there is none or the last one closed. Held
    /// until the guard drops, so statements of one process do not interleave.
    pub async fn get(&self) -> Result<tokio::sync::MappedMutexGuard<'_, Client>, CoordError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            *guard = Some(connect(&self.url, &self.options).await?);
        }
        tokio::sync::MutexGuard::try_map(guard, |c| c.as_mut()).map_err(|_| CoordError::Query {
            what: "connection".to_string(),
            message: "no connection".to_string(),
        })
    }
}

/// A lease holder id unique per process: host name, process id and a random part (so a
/// restarted process with a reused pid is someone else).
pub fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string());
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("{host}:{}:{random:016x}", std::process::id())
}
