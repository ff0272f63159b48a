//! Where the running rule set comes from: the rule packs (built in, or `packs_dir`), with
//! whole packs or single rules turned off, the user's rule directories, and threshold
//! overrides from the config turned into `didban_threshold{alert=…}` recording rules.
//!
//! A user group with the same group name as a pack group replaces that pack group (the way a
//! copied and edited mixin replaces the original); user rules never change a pack otherwise.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use super::file::{load_dirs, load_file, rule_files_in, RuleError};
use super::model::{RecordingRule, Rule, RuleGroup};
use super::packs::PACKS;

/// Where rule packs are read from.
#[derive(Debug, Clone, PartialEq)]
pub enum PackSource {
    /// The packs compiled into the binary (the default).
    Builtin,
    /// Every `*.yml`/`*.yaml` file of a directory, each file a pack named by its stem.
    Dir(PathBuf),
    /// No packs (`packs_enabled = false`).
    Off,
}

/// The rule set's sources and the pack settings of `[alerting]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSources {
    /// The user's rule directories (each file's groups have origin `file:<path>`).
    pub dirs: Vec<PathBuf>,
    /// The packs.
    pub packs: PackSource,
    /// Packs left out, by name (`serverless`).
    pub disabled_packs: Vec<String>,
    /// Pack rules left out, by alert or recorded metric name (`RedisHitRatioLow`).
    pub disabled_rules: Vec<String>,
    /// Threshold overrides: alert name → value, written as `didban_threshold{alert=…}`.
    pub thresholds: BTreeMap<String, f64>,
}

impl RuleSources {
    /// Only these rule directories: no packs, no overrides.
    pub fn dirs_only(dirs: Vec<PathBuf>) -> RuleSources {
        RuleSources {
            dirs,
            packs: PackSource::Off,
            disabled_packs: Vec::new(),
            disabled_rules: Vec::new(),
            thresholds: BTreeMap::new(),
        }
    }
}

/// The group holding the threshold overrides of the config.
pub const THRESHOLDS_GROUP: &str = "didban-thresholds";

fn config_error(key: &str, reason: String) -> RuleError {
    RuleError {
        file: PathBuf::from(format!("alerting.{key}")),
        line: None,
        group: None,
        rule: None,
        reason,
    }
}

/// The packs as `(name, groups)`, from the binary or `dir`.
fn load_packs(source: &PackSource, errors: &mut Vec<RuleError>) -> Vec<(String, Vec<RuleGroup>)> {
    let mut out = Vec::new();
    match source {
        PackSource::Off => {}
        PackSource::Builtin => {
            for p in PACKS {
                match p.groups() {
                    Ok(g) => out.push((p.name.to_string(), g)),
                    Err(e) => errors.extend(e),
                }
            }
        }
        PackSource::Dir(dir) => {
            let files = match rule_files_in(dir) {
                Ok(f) => f,
                Err(e) => {
                    errors.push(config_error(
                        "packs_dir",
                        format!("cannot list pack directory {}: {e}", dir.display()),
                    ));
                    return out;
                }
            };
            for f in files {
                let name = f
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                match load_file(&f) {
                    Ok(mut groups) => {
                        for g in &mut groups {
                            g.origin = format!("pack:{name}");
                        }
                        out.push((name, groups));
                    }
                    Err(e) => errors.extend(e),
                }
            }
        }
    }
    out
}

/// The recording rules that expose `thresholds` as `didban_threshold{alert=…}`.
fn threshold_group(thresholds: &BTreeMap<String, f64>, errors: &mut Vec<RuleError>) -> Option<RuleGroup> {
    let mut rules = Vec::new();
    for (alert, v) in thresholds {
        if !v.is_finite() {
            errors.push(config_error(
                "thresholds",
                format!("{alert} = {v}: a threshold must be a finite number"),
            ));
            continue;
        }
        let mut labels = BTreeMap::new();
        labels.insert("alert".to_string(), alert.clone());
        rules.push(Rule::Recording(RecordingRule {
            name: "didban_threshold".into(),
            expr: format!("vector({v:?})"),
            labels,
        }));
    }
    if rules.is_empty() {
        return None;
    }
    Some(RuleGroup {
        name: THRESHOLDS_GROUP.into(),
        file: "alerting.thresholds".into(),
        origin: "config:alerting.thresholds".into(),
        interval: None,
        query_offset: std::time::Duration::ZERO,
        limit: 0,
        labels: BTreeMap::new(),
        rules,
    })
}

/// Loads the whole rule set: the threshold group first (so thresholds exist before the
/// rules that read them), then the packs (minus disabled packs, disabled rules and groups a
/// user file replaces), then the user's files. A name in `disabled_packs` or
/// `disabled_rules` that no pack has is an error, so a typo does not silently keep a rule on.
/// Every problem of every source is returned.
pub fn load_sources(src: &RuleSources) -> Result<Vec<RuleGroup>, Vec<RuleError>> {
    let mut errors = Vec::new();
    // The files of `rules_dir` load as they always did; their errors join the packs' and
    // the settings' so one reload reports everything wrong at once.
    let user = match load_dirs(&src.dirs) {
        Ok(groups) => groups,
        Err(e) => {
            errors.extend(e);
            Vec::new()
        }
    };
    let packs = load_packs(&src.packs, &mut errors);
    let mut user_names = HashSet::new();
    for g in &user {
        user_names.insert(g.name.clone());
    }
    let mut pack_names = BTreeSet::new();
    let mut rule_names = BTreeSet::new();
    for (name, groups) in &packs {
        pack_names.insert(name.clone());
        for g in groups {
            for r in &g.rules {
                rule_names.insert(r.name().to_string());
            }
        }
    }
    if src.packs != PackSource::Off {
        for p in &src.disabled_packs {
            if !pack_names.contains(p) {
                let known: Vec<&str> = pack_names.iter().map(String::as_str).collect();
                errors.push(config_error(
                    "disabled_packs",
                    format!("no pack is called {p:?} (packs: {})", known.join(", ")),
                ));
            }
        }
        for r in &src.disabled_rules {
            if !rule_names.contains(r) {
                errors.push(config_error(
                    "disabled_rules",
                    format!("no pack has a rule called {r:?}"),
                ));
            }
        }
    }
    let mut out = Vec::new();
    if let Some(g) = threshold_group(&src.thresholds, &mut errors) {
        out.push(g);
    }
    for (name, groups) in packs {
        if src.disabled_packs.contains(&name) {
            continue;
        }
        for mut g in groups {
            if user_names.contains(&g.name) {
                continue;
            }
            g.rules
                .retain(|r| !src.disabled_rules.iter().any(|d| d == r.name()));
            if !g.rules.is_empty() {
                out.push(g);
            }
        }
    }
    out.extend(user);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}
