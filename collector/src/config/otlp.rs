//! `[otlp]`: how OTLP metrics are turned into Prometheus series, beyond the fixed
//! translation rules of `docs/otlp-mapping.md`. Named after Prometheus 3's `otlp:` block.

use serde::Deserialize;

/// OTLP translation options.
#[derive(Debug, Clone, Default)]
pub struct OtlpConfig {
    /// Explicit-bucket histograms become native histograms with custom buckets (one
    /// `name` series) instead of `name_bucket{le}`, `name_sum` and `name_count`. Off by
    /// default, as in Prometheus: dashboards and rules written for `_bucket` series would
    /// find nothing once a metric switches.
    pub convert_histograms_to_nhcb: bool,
}

/// `[otlp]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileOtlp {
    convert_histograms_to_nhcb: Option<bool>,
}

impl FileOtlp {
    /// Overrides the keys given in the file.
    pub(crate) fn apply(self, c: &mut OtlpConfig) {
        if let Some(v) = self.convert_histograms_to_nhcb {
            c.convert_histograms_to_nhcb = v;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::config::Config;

    #[test]
    fn nhcb_conversion_is_off_by_default_and_set_by_the_file() {
        assert!(!Config::default().otlp.convert_histograms_to_nhcb);
        let c = Config::from_toml("[otlp]\nconvert_histograms_to_nhcb = true\n").unwrap();
        assert!(c.otlp.convert_histograms_to_nhcb);
        let e = Config::from_toml("[otlp]\nconvert_histogram_to_nhcb = true\n").unwrap_err();
        assert!(format!("{e:#}").contains("convert_histogram_to_nhcb"), "{e:#}");
    }
}
