//! The routing tree, as Alertmanager's: an alert descends into the first child route that
//! matches (all matching children with `continue: true`), and ends at the deepest routes
//! that match; each of those names a receiver and how to group.

use std::time::Duration;

use didban_store::{LabelMatcher, Labels};

use super::config::{opt_duration, route_matchers, ConfigError, RouteConfig};

/// Grouping and timing of a route, inherited from the parent where unset.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteOpts {
    /// Receiver name.
    pub receiver: String,
    /// Labels to group by.
    pub group_by: Vec<String>,
    /// Group by every label (`group_by: ["..."]`).
    pub group_by_all: bool,
    /// First notification delay.
    pub group_wait: Duration,
    /// Delay between notifications about a changed group.
    pub group_interval: Duration,
    /// Delay before re-sending an unchanged notification.
    pub repeat_interval: Duration,
}

/// A compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    /// Identifies the route in group keys: the parent's key, `/`, this route's matchers.
    pub key: String,
    matchers: Vec<LabelMatcher>,
    continue_: bool,
    /// Effective options.
    pub opts: RouteOpts,
    children: Vec<Route>,
}

impl Route {
    /// Compiles the tree under `root` (which must name a receiver).
    pub fn build(root: &RouteConfig) -> Result<Route, ConfigError> {
        let defaults = RouteOpts {
            receiver: String::new(),
            group_by: Vec::new(),
            group_by_all: false,
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(4 * 3600),
        };
        Route::build_child(root, &defaults, "")
    }

    fn build_child(cfg: &RouteConfig, parent: &RouteOpts, parent_key: &str) -> Result<Route, ConfigError> {
        let matchers = route_matchers(&cfg.matchers, &cfg.match_, &cfg.match_re)?;
        let mut opts = parent.clone();
        if let Some(r) = &cfg.receiver {
            opts.receiver = r.clone();
        }
        if let Some(g) = &cfg.group_by {
            opts.group_by_all = g.iter().any(|l| l == "...");
            opts.group_by = g.iter().filter(|l| *l != "...").cloned().collect();
        }
        if let Some(d) = opt_duration(&cfg.group_wait, "group_wait")? {
            opts.group_wait = d;
        }
        if let Some(d) = opt_duration(&cfg.group_interval, "group_interval")? {
            opts.group_interval = d;
        }
        if let Some(d) = opt_duration(&cfg.repeat_interval, "repeat_interval")? {
            opts.repeat_interval = d;
        }
        let mut shown: Vec<String> = matchers.iter().map(ToString::to_string).collect();
        shown.sort();
        let own = format!("{{{}}}", shown.join(","));
        let key = if parent_key.is_empty() {
            own
        } else {
            format!("{parent_key}/{own}")
        };
        let mut children = Vec::with_capacity(cfg.routes.len());
        for c in &cfg.routes {
            children.push(Route::build_child(c, &opts, &key)?);
        }
        Ok(Route {
            key,
            matchers,
            continue_: cfg.continue_,
            opts,
            children,
        })
    }

    fn matches(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches_labels(labels))
    }

    /// The routes an alert with `labels` ends at (the root matches everything).
    pub fn find<'a>(&'a self, labels: &Labels) -> Vec<&'a Route> {
        let mut out = Vec::new();
        self.descend(labels, &mut out);
        out
    }

    /// Returns true when this route matched (so the caller may stop unless `continue`).
    fn descend<'a>(&'a self, labels: &Labels, out: &mut Vec<&'a Route>) -> bool {
        if !self.matches(labels) {
            return false;
        }
        let before = out.len();
        for c in &self.children {
            if c.descend(labels, out) && !c.continue_ {
                break;
            }
        }
        if out.len() == before {
            out.push(self);
        }
        true
    }

    /// The labels an alert is grouped by on this route.
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        if self.opts.group_by_all {
            return labels.clone();
        }
        labels.keep_only(&self.opts.group_by)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tree() -> Route {
        let yaml = r#"
receiver: default
group_by: [alertname]
routes:
  - matchers: ['severity="critical"']
    receiver: pager
    group_wait: 10s
    continue: true
  - matchers: ['team=~"db|cache"']
    receiver: db
    group_by: ["..."]
    routes:
      - match: {env: dev}
        receiver: devnull
  - match_re: {team: ".+"}
    receiver: never
"#;
        Route::build(&serde_yaml::from_str(yaml).unwrap()).unwrap()
    }

    fn receivers(r: &Route, labels: &[(&str, &str)]) -> Vec<String> {
        r.find(&Labels::from_pairs(labels.iter().copied()))
            .iter()
            .map(|r| r.opts.receiver.clone())
            .collect()
    }

    #[test]
    fn first_match_wins_unless_continue() {
        let r = tree();
        assert_eq!(receivers(&r, &[("alertname", "X")]), ["default"]);
        assert_eq!(
            receivers(&r, &[("severity", "critical"), ("team", "db")]),
            ["pager", "db"]
        );
        assert_eq!(receivers(&r, &[("team", "db"), ("env", "dev")]), ["devnull"]);
        assert_eq!(receivers(&r, &[("team", "web")]), ["never"]);
    }

    #[test]
    fn options_inherit_and_group_labels() {
        let r = tree();
        let labels = Labels::from_pairs([("alertname", "A"), ("severity", "critical"), ("x", "1")]);
        let found = r.find(&labels);
        assert_eq!(found[0].opts.group_wait, Duration::from_secs(10));
        assert_eq!(found[0].opts.group_interval, Duration::from_secs(300));
        assert_eq!(
            found[0].group_labels(&labels),
            Labels::from_pairs([("alertname", "A")])
        );
        assert_eq!(found[0].key, "{}/{severity=\"critical\"}");
        let db = r.find(&Labels::from_pairs([("team", "db"), ("a", "b")]));
        assert_eq!(
            db[0]
                .group_labels(&Labels::from_pairs([("team", "db"), ("a", "b")]))
                .len(),
            2
        );
    }
}
