//! Inhibition, as Alertmanager's: a firing alert matching a rule's source matchers mutes
//! alerts matching its target matchers when the `equal` labels have the same values.

use didban_store::{LabelMatcher, Labels};

use super::config::{route_matchers, ConfigError, InhibitRuleConfig};

/// A compiled inhibition rule.
#[derive(Debug, Clone)]
pub struct InhibitRule {
    source: Vec<LabelMatcher>,
    target: Vec<LabelMatcher>,
    equal: Vec<String>,
}

fn all_match(ms: &[LabelMatcher], labels: &Labels) -> bool {
    ms.iter().all(|m| m.matches_labels(labels))
}

impl InhibitRule {
    /// Compiles a configured rule.
    pub fn build(cfg: &InhibitRuleConfig) -> Result<InhibitRule, ConfigError> {
        Ok(InhibitRule {
            source: route_matchers(&cfg.source_matchers, &cfg.source_match, &cfg.source_match_re)?,
            target: route_matchers(&cfg.target_matchers, &cfg.target_match, &cfg.target_match_re)?,
            equal: cfg.equal.clone(),
        })
    }

    /// True when one of `firing` (labels of the firing alerts) mutes `target` under this
    /// rule. An alert matching both sides never mutes itself, and when the target matches
    /// both sides, sources that also match both sides are ignored (Alertmanager's rule).
    pub fn mutes(&self, target: &Labels, firing: &[&Labels]) -> bool {
        if !all_match(&self.target, target) {
            return false;
        }
        let target_is_source = all_match(&self.source, target);
        for src in firing {
            if *src == target || !all_match(&self.source, src) {
                continue;
            }
            if target_is_source && all_match(&self.target, src) {
                continue;
            }
            let mut equal = true;
            for name in &self.equal {
                if src.get(name) != target.get(name) {
                    equal = false;
                    break;
                }
            }
            if equal {
                return true;
            }
        }
        false
    }
}

/// True when any rule mutes `target`.
pub fn inhibited(rules: &[InhibitRule], target: &Labels, firing: &[&Labels]) -> bool {
    rules.iter().any(|r| r.mutes(target, firing))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn critical_mutes_warning_on_the_same_instance() {
        let cfg: InhibitRuleConfig = serde_yaml::from_str(
            "source_matchers: ['severity=\"critical\"']\ntarget_matchers: ['severity=\"warning\"']\nequal: [instance]\n",
        )
        .unwrap();
        let rule = InhibitRule::build(&cfg).unwrap();
        let crit = Labels::from_pairs([("severity", "critical"), ("instance", "a")]);
        let warn_a = Labels::from_pairs([("severity", "warning"), ("instance", "a")]);
        let warn_b = Labels::from_pairs([("severity", "warning"), ("instance", "b")]);
        assert!(rule.mutes(&warn_a, &[&crit, &warn_a]));
        assert!(!rule.mutes(&warn_b, &[&crit]));
        assert!(!rule.mutes(&crit, &[&crit]));
        assert!(!inhibited(&[rule], &warn_a, &[&warn_b]));
    }
}
