//! Where a configuration section's PostgreSQL URL comes from: inline in the TOML (only
//! without a password), from a file, or from an environment variable — the one rule every
//! section that names a database follows (`[storage.postgres]`, `[alerting.ha]`), so a
//! password never sits in the config file.

use std::path::PathBuf;

use crate::connect::{check_url, has_password, redact};
use crate::error::CoordError;

/// The URL keys of one config section.
#[derive(Debug, Clone, Default)]
pub struct UrlSource {
    /// The section, for messages (`storage.postgres`).
    pub section: String,
    /// `url`: inline, refused when it holds a password.
    pub url: Option<String>,
    /// `url_file`: a file holding the URL (trimmed).
    pub url_file: Option<PathBuf>,
    /// The environment variable read when neither key is set.
    pub env_var: String,
}

impl UrlSource {
    /// The URL the section names, read from the file or `env` when needed, checked to
    /// parse. Errors name the section and key, never the password.
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> Result<String, CoordError> {
        let section = &self.section;
        let setting = |message: String| CoordError::Setting {
            section: section.clone(),
            message,
        };
        let url = match (&self.url, &self.url_file) {
            (Some(_), Some(_)) => return Err(setting("set url or url_file, not both".into())),
            (Some(url), None) => {
                if has_password(url) {
                    return Err(setting(format!(
                        "url {:?} holds a password; put the URL in url_file or {} instead",
                        redact(url),
                        self.env_var
                    )));
                }
                url.clone()
            }
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(text) => text.trim().to_string(),
                Err(e) => return Err(setting(format!("url_file: reading {}: {e}", path.display()))),
            },
            (None, None) => match env(&self.env_var) {
                Some(url) => url,
                None => {
                    return Err(setting(format!(
                        "set url, url_file or the environment variable {}",
                        self.env_var
                    )))
                }
            },
        };
        if url.is_empty() {
            return Err(setting("the URL is empty".into()));
        }
        check_url(&url).map_err(|e| setting(e.to_string()))?;
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn source(url: Option<&str>, url_file: Option<PathBuf>) -> UrlSource {
        UrlSource {
            section: "alerting.ha".into(),
            url: url.map(str::to_string),
            url_file,
            env_var: "DIDBAN_TEST_URL".into(),
        }
    }

    #[test]
    fn the_url_comes_from_the_file_the_environment_or_inline_without_a_password() {
        let none = |_: &str| None;
        assert_eq!(
            source(Some("postgres://db/didban"), None).resolve(none).unwrap(),
            "postgres://db/didban"
        );
        let env = |k: &str| (k == "DIDBAN_TEST_URL").then(|| "postgres://u:pw@db/d".to_string());
        assert_eq!(source(None, None).resolve(env).unwrap(), "postgres://u:pw@db/d");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("url");
        std::fs::write(&file, "host=db password=pw dbname=d\n").unwrap();
        assert_eq!(
            source(None, Some(file.clone())).resolve(none).unwrap(),
            "host=db password=pw dbname=d"
        );
    }

    #[test]
    fn bad_sources_are_refused_naming_the_section_and_never_the_password() {
        let none = |_: &str| None;
        let cases = [
            (source(Some("postgres://u:pw@db/d"), None), "holds a password"),
            (source(None, None), "DIDBAN_TEST_URL"),
            (source(Some("postgres://db/d"), Some("/x".into())), "not both"),
            (source(None, Some("/nonexistent/url".into())), "/nonexistent/url"),
            (
                source(Some("postgres://db/d?sslmode=verify-full"), None),
                "sslmode",
            ),
        ];
        for (src, needle) in cases {
            let e = src.resolve(none).unwrap_err().to_string();
            assert!(e.starts_with("alerting.ha: "), "{e}");
            assert!(e.contains(needle), "{e}");
            assert!(!e.contains("pw@"), "{e}");
        }
    }
}
