//! Rule files: the rule model ([`RuleGroup`], [`Rule`]), Prometheus durations, loading and
//! validation ([`file`](mod@file)), the built-in packs ([`packs`]) and the whole rule set's
//! sources ([`sources`]), the templates of labels and annotations ([`template`]) and rule
//! unit tests ([`unittest`]).

mod duration;
pub mod file;
mod model;
pub mod packs;
pub mod sources;
pub mod template;
pub mod unittest;

pub use duration::{format_prom_duration, parse_prom_duration};
pub use file::{load_dirs, load_file, parse_rule_file, RuleError};
pub use model::{AlertingRule, LogCondition, RecordingRule, Rule, RuleGroup};
pub use sources::{load_sources, PackSource, RuleSources};

#[cfg(test)]
mod tests;
