//! The alert engine's integration tests, one binary: each module was once its own test file
//! (same test names and assertions); `common` starts the SMTP server the e-mail tests share.

mod alertmanager_forward;
mod common;
mod email_smtp;
mod email_tls;
mod rule_packs;
mod webhook_v4;
