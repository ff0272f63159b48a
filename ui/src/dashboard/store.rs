//! Where dashboards come from: shipped with the binary (`dashboards/*.yaml`, compiled in),
//! provisioned from the directories of `[ui] dashboards_dir` (read-only, re-read on every
//! list and view), and saved from the UI under `<data_dir>/dashboards/<id>.yaml` (written
//! atomically). A provisioned dashboard replaces a shipped one with the same id; a user
//! dashboard may not take the id of either.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::Dashboard;
use crate::UiContext;

/// The shipped dashboards: file name and text.
const SHIPPED: [(&str, &str); 10] = [
    ("host.yaml", include_str!("../../../dashboards/host.yaml")),
    (
        "postgresql.yaml",
        include_str!("../../../dashboards/postgresql.yaml"),
    ),
    (
        "redis-celery.yaml",
        include_str!("../../../dashboards/redis-celery.yaml"),
    ),
    ("rabbitmq.yaml", include_str!("../../../dashboards/rabbitmq.yaml")),
    (
        "http-service.yaml",
        include_str!("../../../dashboards/http-service.yaml"),
    ),
    (
        "serverless.yaml",
        include_str!("../../../dashboards/serverless.yaml"),
    ),
    ("didban.yaml", include_str!("../../../dashboards/didban.yaml")),
    ("nginx.yaml", include_str!("../../../dashboards/nginx.yaml")),
    (
        "pgbouncer.yaml",
        include_str!("../../../dashboards/pgbouncer.yaml"),
    ),
    ("gunicorn.yaml", include_str!("../../../dashboards/gunicorn.yaml")),
];

/// Where a dashboard was loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Compiled into the binary.
    Shipped,
    /// A file in a provisioning directory (read-only in the UI).
    Provisioned(PathBuf),
    /// Saved from the UI.
    User,
}

impl Source {
    /// Whether the UI may change or delete it.
    pub fn editable(&self) -> bool {
        matches!(self, Source::User)
    }

    /// A word for the list.
    pub fn label(&self) -> &'static str {
        match self {
            Source::Shipped => "shipped",
            Source::Provisioned(_) => "provisioned",
            Source::User => "saved",
        }
    }
}

/// A dashboard and its origin.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The dashboard.
    pub dashboard: Dashboard,
    /// Its origin.
    pub source: Source,
}

/// Every dashboard, sorted by title, and the files that failed to load (with why).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Loaded dashboards.
    pub entries: Vec<Entry>,
    /// `file: reason` for each file that was refused.
    pub errors: Vec<String>,
}

impl Catalog {
    /// The dashboard with `id`.
    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.dashboard.id == id)
    }
}

/// Why a save or delete failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The id belongs to a shipped or provisioned dashboard.
    #[error(
        "the id {id:?} belongs to a {source_label} dashboard, which cannot be overwritten; choose another id"
    )]
    ReadOnly {
        /// The id.
        id: String,
        /// `shipped` or `provisioned`.
        source_label: &'static str,
    },
    /// A user dashboard with that id already exists (when renaming or creating).
    #[error("a dashboard with id {0:?} already exists")]
    Exists(String),
    /// No user dashboard with that id.
    #[error("no saved dashboard with id {0:?}")]
    NotFound(String),
    /// The dashboard is invalid.
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn shipped() -> &'static (Vec<Dashboard>, Vec<String>) {
    static SHIPPED_PARSED: OnceLock<(Vec<Dashboard>, Vec<String>)> = OnceLock::new();
    SHIPPED_PARSED.get_or_init(|| {
        let mut ok = Vec::new();
        let mut errors = Vec::new();
        for (name, text) in SHIPPED {
            match Dashboard::from_yaml(name, text) {
                Ok(d) => ok.push(d),
                Err(e) => errors.push(e.to_string()),
            }
        }
        (ok, errors)
    })
}

/// The shipped dashboards' file names and texts (for tests and docs).
pub fn shipped_sources() -> &'static [(&'static str, &'static str)] {
    &SHIPPED
}

/// The directory of user dashboards.
pub fn user_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("dashboards")
}

/// Reads every `.yaml`/`.yml` file of `dir`, sorted by name. A missing directory is empty.
fn read_dir(dir: &Path, errors: &mut Vec<String>) -> Vec<(PathBuf, Dashboard)> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return out,
        Err(e) => {
            errors.push(format!("{}: {e}", dir.display()));
            return out;
        }
    };
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    paths.sort();
    for path in paths {
        let name = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => match Dashboard::from_yaml(&name, &text) {
                Ok(d) => out.push((path, d)),
                Err(e) => errors.push(e.to_string()),
            },
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    out
}

/// Loads everything: shipped, then provisioned (replacing shipped ids), then user
/// dashboards (refused when their id is taken).
pub fn load(ctx: &UiContext) -> Catalog {
    load_from(&ctx.data_dir, &ctx.dashboard_dirs)
}

/// [`load`] from explicit directories.
pub fn load_from(data_dir: &Path, dirs: &[PathBuf]) -> Catalog {
    let (ship, ship_errors) = shipped();
    let mut cat = Catalog {
        entries: ship
            .iter()
            .map(|d| Entry {
                dashboard: d.clone(),
                source: Source::Shipped,
            })
            .collect(),
        errors: ship_errors.clone(),
    };
    for dir in dirs {
        for (path, d) in read_dir(dir, &mut cat.errors) {
            let existing = cat.entries.iter().position(|e| e.dashboard.id == d.id);
            match existing {
                Some(i) if matches!(cat.entries[i].source, Source::Provisioned(_)) => {
                    cat.errors.push(format!(
                        "{}: id {:?} is already provisioned by another file; skipped",
                        path.display(),
                        d.id
                    ))
                }
                Some(i) => {
                    cat.entries[i] = Entry {
                        dashboard: d,
                        source: Source::Provisioned(path),
                    }
                }
                None => cat.entries.push(Entry {
                    dashboard: d,
                    source: Source::Provisioned(path),
                }),
            }
        }
    }
    for (path, d) in read_dir(&user_dir(data_dir), &mut cat.errors) {
        if let Some(e) = cat.get(&d.id) {
            cat.errors.push(format!(
                "{}: id {:?} is taken by a {} dashboard; rename the file's id",
                path.display(),
                d.id,
                e.source.label()
            ));
            continue;
        }
        let file_id = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if file_id != d.id {
            cat.errors.push(format!(
                "{}: the file name does not match id {:?}; skipped",
                path.display(),
                d.id
            ));
            continue;
        }
        cat.entries.push(Entry {
            dashboard: d,
            source: Source::User,
        });
    }
    cat.entries.sort_by(|a, b| {
        a.dashboard
            .title
            .to_lowercase()
            .cmp(&b.dashboard.title.to_lowercase())
            .then_with(|| a.dashboard.id.cmp(&b.dashboard.id))
    });
    cat
}

/// Saves `dash` as a user dashboard. `previous` is the id it was edited under: when it
/// differs (a rename or a copy) the new id must be free, and the old user file (if any) is
/// removed after the new one is written.
pub fn save(ctx: &UiContext, dash: &Dashboard, previous: Option<&str>) -> Result<(), StoreError> {
    save_in(&ctx.data_dir, &ctx.dashboard_dirs, dash, previous)
}

/// [`save`] with explicit directories.
pub fn save_in(
    data_dir: &Path,
    dirs: &[PathBuf],
    dash: &Dashboard,
    previous: Option<&str>,
) -> Result<(), StoreError> {
    dash.validate().map_err(StoreError::Invalid)?;
    let cat = load_from(data_dir, dirs);
    if let Some(e) = cat.get(&dash.id) {
        if !e.source.editable() {
            return Err(StoreError::ReadOnly {
                id: dash.id.clone(),
                source_label: e.source.label(),
            });
        }
        if previous != Some(dash.id.as_str()) {
            return Err(StoreError::Exists(dash.id.clone()));
        }
    }
    let dir = user_dir(data_dir);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let path = dir.join(format!("{}.yaml", dash.id));
    let tmp = dir.join(format!(".{}.yaml.tmp", dash.id));
    {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(dash.to_yaml().as_bytes()).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        // Make the rename durable; not every platform can fsync a directory.
        let _ = d.sync_all();
    }
    if let Some(prev) = previous {
        if prev != dash.id && cat.get(prev).is_some_and(|e| e.source.editable()) {
            let old = dir.join(format!("{prev}.yaml"));
            std::fs::remove_file(&old).map_err(io(&old))?;
        }
    }
    Ok(())
}

/// Deletes the user dashboard `id`.
pub fn delete(ctx: &UiContext, id: &str) -> Result<(), StoreError> {
    let cat = load(ctx);
    match cat.get(id) {
        None => Err(StoreError::NotFound(id.to_string())),
        Some(e) if !e.source.editable() => Err(StoreError::ReadOnly {
            id: id.to_string(),
            source_label: e.source.label(),
        }),
        Some(_) => {
            let path = user_dir(&ctx.data_dir).join(format!("{id}.yaml"));
            std::fs::remove_file(&path).map_err(|source| StoreError::Io { path, source })
        }
    }
}
