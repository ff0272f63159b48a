//! Building a receiver's integrations from its configuration.

use std::sync::Arc;

use crate::notify::config::{ConfigError, GlobalConfig, ReceiverConfig};
use crate::receivers::email::Email;
use crate::receivers::webhook::Webhook;
use crate::receivers::Integration;

/// The integrations of one receiver, webhooks first, then e-mail (the order of the
/// `webhook[i]` / `email[i]` names in the history).
pub fn integrations(
    r: &ReceiverConfig,
    global: &GlobalConfig,
) -> Result<Vec<Arc<dyn Integration>>, ConfigError> {
    let mut list: Vec<Arc<dyn Integration>> = Vec::new();
    for w in &r.webhook_configs {
        list.push(Arc::new(Webhook::new(w)?));
    }
    for e in &r.email_configs {
        list.push(Arc::new(Email::new(e, global)?));
    }
    Ok(list)
}
