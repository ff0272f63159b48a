//! The shipped rule packs, compiled into the binary so a fresh install evaluates them with no
//! file on disk, and their unit tests (for `didban test rules` with no file).
//!
//! Adding a pack is one line in [`PACKS`] (and one in [`PACK_TESTS`] for its tests): the
//! file `alerting/rules/<name>.yaml` becomes the pack `<name>`.

use std::path::{Path, PathBuf};

use super::file::{parse_rule_file, RuleError};
use super::model::RuleGroup;

/// A built-in rule pack: the text of `alerting/rules/<name>.yaml`.
#[derive(Debug, Clone, Copy)]
pub struct Pack {
    /// The pack's name: the file's stem (`redis`), as in `disabled_packs` and `pack:<name>`.
    pub name: &'static str,
    /// The rule file's YAML.
    pub text: &'static str,
}

impl Pack {
    /// The name the pack's groups carry as `file` (and errors show): `<builtin>/<name>.yaml`.
    pub fn file_name(&self) -> PathBuf {
        PathBuf::from(format!("{BUILTIN_DIR}/{}.yaml", self.name))
    }

    /// Parses the pack; its groups carry the origin `pack:<name>`.
    pub fn groups(&self) -> Result<Vec<RuleGroup>, Vec<RuleError>> {
        let mut groups = parse_rule_file(&self.file_name(), self.text)?;
        for g in &mut groups {
            g.origin = format!("pack:{}", self.name);
        }
        Ok(groups)
    }
}

/// A built-in unit test file: the text of `alerting/rules/tests/<name>.test.yaml`.
#[derive(Debug, Clone, Copy)]
pub struct PackTest {
    /// The file's stem without `.test` (`postgres`, `serverless_cost`).
    pub name: &'static str,
    /// The test file's YAML; its `rule_files` (`../<pack>.yaml`) name built-in packs.
    pub text: &'static str,
}

impl PackTest {
    /// The name the test is reported under: `<builtin>/tests/<name>.test.yaml`.
    pub fn file_name(&self) -> PathBuf {
        PathBuf::from(format!("{BUILTIN_DIR}/tests/{}.test.yaml", self.name))
    }
}

/// The pseudo-directory built-in packs are shown under (in `file`, errors and test reports).
pub const BUILTIN_DIR: &str = "<builtin>";

macro_rules! pack {
    ($name:literal) => {
        Pack {
            name: $name,
            text: include_str!(concat!("../../rules/", $name, ".yaml")),
        }
    };
}

macro_rules! pack_test {
    ($name:literal) => {
        PackTest {
            name: $name,
            text: include_str!(concat!("../../rules/tests/", $name, ".test.yaml")),
        }
    };
}

/// Every built-in pack, in load order.
pub const PACKS: &[Pack] = &[
    pack!("celery"),
    pack!("didban"),
    pack!("host"),
    pack!("http"),
    pack!("nginx"),
    pack!("pgbouncer"),
    pack!("postgres"),
    pack!("probes"),
    pack!("redis"),
    pack!("security"),
    pack!("serverless"),
];

/// Every built-in pack's unit test file.
pub const PACK_TESTS: &[PackTest] = &[
    pack_test!("celery"),
    pack_test!("didban"),
    pack_test!("host"),
    pack_test!("http"),
    pack_test!("nginx"),
    pack_test!("pgbouncer"),
    pack_test!("postgres"),
    pack_test!("probes"),
    pack_test!("redis"),
    pack_test!("security"),
    pack_test!("serverless"),
    pack_test!("serverless_cost"),
];

/// The built-in pack called `name`.
pub fn pack(name: &str) -> Option<&'static Pack> {
    PACKS.iter().find(|p| p.name == name)
}

/// The built-in pack a test's `rule_files` entry names (`../redis.yaml` → `redis`), matched
/// by file name only, so the checked-in test files run unchanged against the built-ins.
pub fn pack_for_path(path: &Path) -> Option<&'static Pack> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".yaml").or_else(|| name.strip_suffix(".yml"))?;
    pack(stem)
}
