//! The downsampling keys of `[storage]`: when blocks get 5-minute and 1-hour copies and how
//! long each resolution is kept (docs/configuration.md, docs/storage.md#downsampling).

use std::time::Duration;

use didban_store::DbOptions;

/// `storage.downsample_5m_after`, `downsample_1h_after`, `retention_time_5m`,
/// `retention_time_1h`; a zero age turns that resolution off, a zero retention keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownsampleConfig {
    /// `downsample_5m_after`: age after which raw blocks get a 5-minute copy.
    pub after_5m: Duration,
    /// `downsample_1h_after`: age after which blocks get a 1-hour copy.
    pub after_1h: Duration,
    /// `retention_time_5m`: how long 5-minute blocks are kept.
    pub retention_5m: Duration,
    /// `retention_time_1h`: how long 1-hour blocks are kept.
    pub retention_1h: Duration,
    /// Whether `downsample_5m_after` and `downsample_1h_after` were set in the file: only
    /// ages set there are checked against the retentions (see [`DownsampleConfig::check`]).
    pub explicit: (bool, bool),
}

impl DownsampleConfig {
    /// The database's defaults (2d, 10d, 90d, 365d).
    pub fn from_db(db: &DbOptions) -> DownsampleConfig {
        DownsampleConfig {
            after_5m: db.downsample_5m_after,
            after_1h: db.downsample_1h_after,
            retention_5m: db.retention_time_5m,
            retention_1h: db.retention_time_1h,
            explicit: (false, false),
        }
    }

    /// Sets these keys in the database options.
    pub fn apply_to(&self, o: &mut DbOptions) {
        o.downsample_5m_after = self.after_5m;
        o.downsample_1h_after = self.after_1h;
        o.retention_time_5m = self.retention_5m;
        o.retention_time_1h = self.retention_1h;
    }

    /// Refuses settings under which data would be deleted before it is downsampled: an age
    /// set in the file (`explicit`) not below the retention of the data it is made from,
    /// `raw_retention` for the 5-minute copies. A default age that does not fit a short
    /// retention is no error: the database then skips that resolution
    /// (docs/storage.md#downsampling). Called at load and again after command-line flags
    /// change a retention.
    pub fn check(&self, raw_retention: Duration) -> anyhow::Result<()> {
        let explicit = self.explicit;
        let source_5m = ("storage.retention_time", raw_retention);
        let source_1h = if self.after_5m.is_zero() {
            source_5m
        } else {
            ("storage.retention_time_5m", self.retention_5m)
        };
        let rules = [
            (
                "storage.downsample_5m_after",
                self.after_5m,
                source_5m,
                explicit.0,
            ),
            (
                "storage.downsample_1h_after",
                self.after_1h,
                source_1h,
                explicit.1,
            ),
        ];
        for (key, age, (source_key, retention), set) in rules {
            if set && !age.is_zero() && !retention.is_zero() && age >= retention {
                anyhow::bail!(
                    "{key} ({}) must be shorter than {source_key} ({}): the data would be deleted before it is downsampled",
                    humantime(age),
                    humantime(retention)
                );
            }
        }
        if (explicit.0 || explicit.1)
            && !self.after_5m.is_zero()
            && !self.after_1h.is_zero()
            && self.after_1h < self.after_5m
        {
            anyhow::bail!(
                "storage.downsample_1h_after ({}) must not be shorter than storage.downsample_5m_after ({}): 1-hour blocks are made from 5-minute blocks",
                humantime(self.after_1h),
                humantime(self.after_5m)
            );
        }
        Ok(())
    }
}

/// A duration as the configuration writes it (whole seconds).
fn humantime(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::Config;

    #[test]
    fn defaults_downsample_and_keep_downsampled_data_longer() {
        let c = Config::from_toml("").unwrap();
        let d = &c.storage.downsample;
        assert_eq!(d.after_5m, Duration::from_secs(2 * 86400));
        assert_eq!(d.after_1h, Duration::from_secs(10 * 86400));
        assert!(d.retention_5m > c.storage.retention_time && d.retention_1h > d.retention_5m);
        let o = c.db_options();
        assert_eq!(o.downsample_1h_after, d.after_1h);
        assert_eq!(o.retention_time_1h, d.retention_1h);
    }

    #[test]
    fn keys_are_read_and_bad_combinations_refused() {
        let c = Config::from_toml(
            "[storage]\ndownsample_5m_after = \"1d\"\ndownsample_1h_after = \"0\"\nretention_time_5m = \"30d\"",
        )
        .unwrap();
        assert_eq!(c.storage.downsample.after_5m, Duration::from_secs(86400));
        assert!(c.storage.downsample.after_1h.is_zero());
        let err = Config::from_toml("[storage]\nretention_time = \"1d\"\ndownsample_5m_after = \"2d\"")
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("storage.downsample_5m_after (172800s)")
                && msg.contains("storage.retention_time (86400s)"),
            "{msg}"
        );
        let err = Config::from_toml("[storage]\nretention_time_5m = \"5d\"\ndownsample_1h_after = \"10d\"")
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("storage.retention_time_5m"),
            "{err:#}"
        );
        // A short retention with the default ages is accepted (the database skips them).
        Config::from_toml("[storage]\nretention_time = \"1m\"").unwrap();
        let err = Config::from_toml("[storage]\ndownsample_5m_after = \"3d\"\ndownsample_1h_after = \"1d\"")
            .unwrap_err();
        assert!(format!("{err:#}").contains("must not be shorter"), "{err:#}");
        let err = Config::from_toml("[storage]\ndownsample_1h_after = \"soon\"").unwrap_err();
        assert!(
            format!("{err:#}").contains("storage.downsample_1h_after"),
            "{err:#}"
        );
    }
}
