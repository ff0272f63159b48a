//! The alert engine's integration tests, one binary: each module was once its own test file
//! (same test names and assertions); the SMTP server of the e-mail tests comes from
//! `didban_testkit::smtp`.

mod alertmanager_forward;
mod builtin_packs;
mod email_smtp;
mod email_tls;
mod ha_pair;
mod receivers;
mod rule_packs;
mod security_logs;
mod time_scale;
mod webhook_v4;
