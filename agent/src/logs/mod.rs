//! Log-file tailing: globs polled for new lines, new files and rotation; records (multiline
//! and JSON aware) shipped as OTLP logs through the disk buffer; positions checkpointed after
//! the records are stored, so a restart resumes with no loss (at-least-once: a crash between
//! storing and checkpointing resends those records).
//!
//! Rotation: by rename — the open handle is read to its end before it is let go, and the new
//! file under the old name is read from its start; by copytruncate — a file shorter than the
//! read position is read again from 0.

pub mod checkpoint;
pub mod file;
pub mod parse;
pub mod record;
pub mod request;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{LogsConfig, StartAt};
use crate::export::{OtlpSink, Signal};
use checkpoint::{CheckpointWriter, Checkpoints, FileId};
use didban_base::otlp::kv;
use file::TailedFile;
use parse::multiline::Joiner;
use parse::Parser;
use request::{FileAttributes, RequestBuilder};

/// Most records in one OTLP request (requests are also cut at `export.batch_max_bytes`, which
/// usually comes first). High enough that a poll round of several files at thousands of lines
/// per second is one request — one send and one acknowledgement — rather than one per 2,000
/// records (issue 12).
pub const RECORDS_PER_REQUEST: usize = 10_000;

/// The running tailers, one task per `[[logs]]` section.
pub struct LogTailer {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// The checkpoint file of a section: named after its service and a hash of its globs, so
/// sections keep their positions when the config is reordered.
pub fn checkpoint_path(data_dir: &Path, config: &LogsConfig) -> PathBuf {
    let mut service = String::new();
    for c in config.service.chars() {
        service.push(if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '_'
        });
    }
    let hash = crc32fast::hash(config.paths.join("\n").as_bytes());
    data_dir
        .join("logs")
        .join(format!("{service}-{hash:08x}.checkpoints"))
}

impl LogTailer {
    /// Starts one task per section; they run until [`LogTailer::shutdown`].
    pub fn start(configs: &[LogsConfig], data_dir: &Path, host_name: &str, sink: OtlpSink) -> LogTailer {
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for config in configs {
            let section = Section::new(
                config.clone(),
                checkpoint_path(data_dir, config),
                host_name,
                sink.clone(),
            );
            tasks.push(tokio::spawn(section.run(stop_rx.clone())));
        }
        LogTailer { stop, tasks }
    }

    /// Stops polling after the current round (its records stored and checkpointed).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

struct Section {
    config: LogsConfig,
    checkpoint_file: PathBuf,
    checkpoint_writer: CheckpointWriter,
    joiner: Joiner,
    parser: Parser,
    excludes: Vec<glob::Pattern>,
    resource: Resource,
    scope: InstrumentationScope,
    sink: OtlpSink,
    files: BTreeMap<FileId, TailedFile>,
    checkpoints: Checkpoints,
    first_scan: bool,
    warned: BTreeSet<String>,
}

fn now_ns() -> u64 {
    let ms = didban_base::now_ms();
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}

impl Section {
    fn new(config: LogsConfig, checkpoint_file: PathBuf, host_name: &str, sink: OtlpSink) -> Section {
        let joiner = match regex::Regex::new(&config.multiline_start) {
            Ok(start) if !config.multiline_start.is_empty() => Joiner::Start(start),
            _ if config.multiline_auto => Joiner::Auto,
            _ => Joiner::Off,
        };
        // The config was validated: a bad `log_format` only reaches here through the library.
        let parser = match Parser::new(&config) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(service = %config.service, error = %e, "log_format unusable; parsing lines as text");
                Parser::of(crate::config::LogFormat::Text)
            }
        };
        let mut excludes = Vec::new();
        for e in &config.exclude {
            if let Ok(p) = glob::Pattern::new(e) {
                excludes.push(p);
            }
        }
        let resource = Resource {
            attributes: vec![kv("service.name", &config.service), kv("host.name", host_name)],
            ..Default::default()
        };
        let checkpoints = Checkpoints::load(&checkpoint_file);
        Section {
            config,
            checkpoint_writer: CheckpointWriter::new(&checkpoint_file),
            checkpoint_file,
            joiner,
            parser,
            excludes,
            resource,
            scope: InstrumentationScope {
                name: "didban-agent/logs".to_string(),
                ..Default::default()
            },
            sink,
            files: BTreeMap::new(),
            checkpoints,
            first_scan: true,
            warned: BTreeSet::new(),
        }
    }

    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            let more = self.round().await;
            if *stop.borrow() {
                return;
            }
            if more {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.poll_interval) => {}
                _ = stop.changed() => {
                    // One last round so lines written just before the stop are shipped.
                    self.round().await;
                    return;
                }
            }
        }
    }

    fn warn_once(&mut self, key: String, message: &str, error: &dyn std::fmt::Display) {
        if self.warned.insert(key.clone()) {
            tracing::warn!(path = %key, error = %error, "{message}");
        }
    }

    /// Files the globs name now, with their identities.
    fn discover(&mut self) -> BTreeMap<FileId, String> {
        let mut found = BTreeMap::new();
        for pattern in self.config.paths.clone() {
            let entries = match glob::glob(&pattern) {
                Ok(e) => e,
                Err(e) => {
                    self.warn_once(pattern.clone(), "invalid log glob", &e);
                    continue;
                }
            };
            for entry in entries {
                let path = match entry {
                    Ok(p) => p,
                    Err(e) => {
                        self.warn_once(e.path().display().to_string(), "log path unreadable", &e);
                        continue;
                    }
                };
                if self.excludes.iter().any(|x| x.matches_path(&path)) {
                    continue;
                }
                let Some(name) = path.to_str().map(str::to_string) else {
                    continue;
                };
                match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() => {
                        found.insert(
                            FileId {
                                dev: m.dev(),
                                ino: m.ino(),
                            },
                            name,
                        );
                    }
                    Ok(_) => {}
                    Err(e) => self.warn_once(name, "log file unreadable", &e),
                }
            }
        }
        found
    }

    /// One poll of every file; returns whether more data is waiting.
    async fn round(&mut self) -> bool {
        let found = self.discover();
        for (id, path) in &found {
            if let Some(f) = self.files.get_mut(id) {
                f.rotated = false;
                continue;
            }
            let offset = match self.checkpoints.files.get(id) {
                Some((_, offset)) => *offset,
                None if self.first_scan && self.config.start_at == StartAt::End => {
                    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
                }
                None => 0,
            };
            match TailedFile::open(path, *id, offset, self.config.multiline_max_lines) {
                Ok(f) => {
                    tracing::info!(path = %path, offset, "tailing log file");
                    self.warned.remove(path);
                    self.files.insert(*id, f);
                }
                Err(e) => self.warn_once(path.clone(), "log file unreadable", &e),
            }
        }
        self.first_scan = false;
        for (id, f) in self.files.iter_mut() {
            if !found.contains_key(id) {
                f.rotated = true;
            }
        }
        let mut requests = RequestBuilder::new(
            &self.resource,
            &self.scope,
            RECORDS_PER_REQUEST,
            self.sink.max_request_bytes(),
        );
        let mut more = false;
        let mut finished = Vec::new();
        let mut before = Vec::new();
        let observed = now_ns();
        for (id, f) in self.files.iter_mut() {
            before.push((*id, f.committed()));
            match f.poll(&self.joiner) {
                Ok(polled) => {
                    more |= polled.more;
                    if !polled.records.is_empty() {
                        let file = FileAttributes::of(&f.path);
                        for text in &polled.records {
                            let parsed = self.parser.parse(text, observed);
                            requests.push(text, &file, &parsed, observed);
                        }
                    }
                    if f.rotated && polled.bytes == 0 {
                        finished.push(*id);
                    }
                }
                Err(e) => {
                    tracing::warn!(path = %f.path, error = %e, "reading log file failed; letting it go");
                    finished.push(*id);
                }
            }
        }
        if !requests.is_empty() && !self.ship(requests.finish()).await {
            // Not stored: read the same lines again next round.
            for (id, offset) in before {
                if let Some(f) = self.files.get_mut(&id) {
                    if let Err(e) = f.rewind(offset) {
                        tracing::warn!(path = %f.path, error = %e, "rewinding log file failed");
                    }
                }
            }
            return false;
        }
        for id in finished {
            self.files.remove(&id);
        }
        self.save_checkpoints();
        more
    }

    /// Buffers a round's requests together (one fsync); false when they could not be stored.
    async fn ship(&self, requests: Vec<Vec<u8>>) -> bool {
        if let Err(e) = self.sink.send_all(Signal::Logs, requests).await {
            tracing::error!(error = %e, "log records could not be buffered; will read them again");
            return false;
        }
        true
    }

    fn save_checkpoints(&mut self) {
        let mut next = Checkpoints::default();
        for (id, f) in &self.files {
            next.files.insert(*id, (f.path.clone(), f.committed()));
        }
        if next == self.checkpoints {
            return;
        }
        if let Some(dir) = self.checkpoint_file.parent() {
            if let Err(e) = std::fs::create_dir_all(dir) {
                tracing::warn!(path = %dir.display(), error = %e, "cannot create the log checkpoint directory");
                return;
            }
        }
        match self.checkpoint_writer.save(&next) {
            Ok(()) => self.checkpoints = next,
            Err(e) => {
                tracing::warn!(path = %self.checkpoint_file.display(), error = %e, "saving log checkpoints failed")
            }
        }
    }
}
