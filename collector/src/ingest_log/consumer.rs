//! The ingester's side of the ingest log: one durable consumer per partition, its
//! messages appended to the stores in stream order, the stream acknowledged after.
//!
//! Hidden contract: every append carries the message's stream sequence into the store's
//! WAL record (`LogPosition`), and this loop never hands a store a message at or below the
//! highest sequence that store already holds for the partition. Both together make a
//! redelivery (a kill between the append and the acknowledgement, an acknowledgement lost
//! on the way) harmless: the WAL replay tells each store's highest sequence, the loop
//! skips up to it. Each signal keeps its own mark because each store has its own WAL.
//!
//! The published blocks and sealed log days give marks too (`published_positions`): a
//! metric or span block holds everything of the partition up to its positions; sealed
//! log days hold, per day, the records up to their seal's mark, and everything below the
//! highest floor (`didban_store::logs::LogPublished`). The loop skips up to the higher of
//! the WAL's and the published marks, and a log record whose day's sealed indexes hold
//! its message. A process whose data directory holds nothing of the partition (the
//! replacement of an ingester whose disk is gone) starts the stream after the lowest
//! published mark of the three signals — from the start when a signal has none — instead
//! of the consumer's acknowledgement floor, which covers what died with the disk.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::Message;
use didban_coord::LeaseHolder;
use didban_store::logs::day_of;
use didban_store::{AppendError, LogPosition};
use futures::StreamExt;
use tokio::sync::watch;

use super::marks::{published_marks, replayed_marks, Marks, Stored};
use super::message::{self, Batch};
use super::IngestLog;
use crate::state::AppState;

/// Most messages taken per fetch (and so per store append).
const FETCH_MESSAGES: usize = 512;

/// How long a fetch waits for messages when the partition is idle.
const FETCH_WAIT: Duration = Duration::from_millis(500);

/// How long JetStream waits for an acknowledgement before redelivering: long, since a
/// store refusing appends (a full disk) holds a batch back for as long as it lasts, and a
/// redelivery would only be skipped.
const ACK_WAIT: Duration = Duration::from_secs(300);

/// Pause before retrying after the stream or a store failed.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// What a consumer reads: its partition, and how many bytes one fetch may bring.
#[derive(Debug, Clone, Copy)]
struct Reading {
    partition: u32,
    fetch_bytes: usize,
}

/// One fetch's messages, decoded and grouped per signal in stream order.
#[derive(Default)]
struct Grouped {
    metrics: (Vec<didban_store::SeriesSamples>, u64),
    spans: (Vec<didban_store::traces::Span>, u64),
    logs: (Vec<didban_store::logs::LogRecord>, u64),
    /// Sequence of the first message whose log records are in `logs`.
    logs_first: Option<u64>,
    exemplars: (Vec<didban_store::SeriesExemplar>, u64),
    /// Messages skipped as already stored.
    skipped: u64,
    /// Messages that are not ingest log messages (acknowledged and dropped).
    undecodable: u64,
}

/// Consumes `partition` into `state`'s stores until `stop`.
///
/// With `lease` (a metastore is configured) the partition is consumed only while this
/// process holds the partition's lease, so a replacement started while the process it
/// replaces still runs (or is cut off) waits for it instead of storing the same messages
/// twice; the lease is released at the end.
pub async fn run(
    state: AppState,
    log: Arc<IngestLog>,
    partition: u32,
    lease: Option<LeaseHolder>,
    stop: watch::Receiver<bool>,
) {
    consume_while_held(state, &log, partition, lease.as_ref(), stop).await;
    if let Some(lease) = lease {
        lease.release().await;
    }
}

/// [`run`] until `stop`.
async fn consume_while_held(
    state: AppState,
    log: &IngestLog,
    partition: u32,
    lease: Option<&LeaseHolder>,
    mut stop: watch::Receiver<bool>,
) {
    // Where to start instead of the consumer's acknowledgement floor, until the first
    // acknowledgement: set when this data directory holds nothing of the partition (a
    // replacement for a process whose disk is gone, or the first consumer).
    let mut resume_at = None;
    // Taken once the partition is ours (with a lease, what the previous holder published
    // until then counts).
    let mut stored: Option<Stored> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        if let Some(lease) = lease {
            if !wait_for_lease(lease, partition, &mut stop).await {
                return;
            }
        }
        let stored = match &mut stored {
            Some(stored) => stored,
            None => {
                let replayed = replayed_marks(&state, partition);
                let (published, log_days) = match published_marks(&state, partition).await {
                    Ok(read) => read,
                    Err(e) => {
                        tracing::warn!(error = %e, partition, "retrying");
                        if pause(&mut stop).await {
                            return;
                        }
                        continue;
                    }
                };
                if replayed == Marks::default() {
                    resume_at = Some(published.metrics.min(published.traces).min(published.logs) + 1);
                }
                let marks = replayed.max(published);
                tracing::info!(
                    partition,
                    metrics = marks.metrics,
                    traces = marks.traces,
                    logs = marks.logs,
                    log_days = log_days.days.len(),
                    resume_at,
                    "consuming the ingest log past the sequences already stored"
                );
                stored.insert(Stored { marks, log_days })
            }
        };
        let opened = tokio::select! {
            opened = open_consumer(log, partition, resume_at) => opened,
            _ = stop.changed() => return,
        };
        let consumer = match opened {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, partition, "ingest log consumer unavailable; retrying");
                if pause(&mut stop).await {
                    return;
                }
                continue;
            }
        };
        let reading = Reading {
            partition,
            fetch_bytes: log.fetch_bytes(),
        };
        let consumed = consume(
            &state,
            &consumer,
            reading,
            lease,
            stored,
            &mut resume_at,
            &mut stop,
        )
        .await;
        if let Err(e) = consumed {
            tracing::warn!(error = %e, partition, "ingest log consumer failed; reopening");
            if pause(&mut stop).await {
                return;
            }
        } else {
            return;
        }
    }
}

/// The durable consumer of `partition`, made afresh from its last acknowledgement (or
/// from `resume_at` when given).
///
/// Why afresh: messages delivered to a process that died (or to a fetch that failed) stay
/// "in flight" until `ack_wait` passes, and the next acknowledgement — with
/// `AckPolicy::All` — would cover them though they were never stored. Recreating the
/// consumer at its acknowledgement floor delivers everything after it again, in stream
/// order, which the marks make safe. (Hidden contract: one process per partition.)
async fn open_consumer(
    log: &IngestLog,
    partition: u32,
    resume_at: Option<u64>,
) -> Result<PullConsumer, String> {
    log.ensure_stream().await?;
    let name = &log.config().stream;
    let stream = log
        .context()
        .get_stream(name)
        .await
        .map_err(|e| format!("stream {name:?}: {e}"))?;
    let durable = format!("didban-p{partition}");
    let floor = match stream.consumer_info(&durable).await {
        Ok(info) => Some(info.ack_floor.stream_sequence),
        Err(_) => None,
    };
    if floor.is_some() {
        stream
            .delete_consumer(&durable)
            .await
            .map_err(|e| format!("recreating consumer {durable:?}: {e}"))?;
    }
    let deliver_policy = match (resume_at, floor) {
        (Some(start_sequence), _) if start_sequence > 1 => DeliverPolicy::ByStartSequence { start_sequence },
        (Some(_), _) => DeliverPolicy::All,
        (None, Some(acked)) if acked > 0 => DeliverPolicy::ByStartSequence {
            start_sequence: acked + 1,
        },
        _ => DeliverPolicy::All,
    };
    let config = pull::Config {
        durable_name: Some(durable.clone()),
        filter_subject: log.subject(partition),
        ack_policy: AckPolicy::All,
        deliver_policy,
        ack_wait: ACK_WAIT,
        ..Default::default()
    };
    stream
        .create_consumer(config)
        .await
        .map_err(|e| format!("consumer {durable:?}: {e}"))
}

/// Fetches, stores and acknowledges until `stop` (Ok) or the stream fails (Err).
async fn consume(
    state: &AppState,
    consumer: &PullConsumer,
    reading: Reading,
    lease: Option<&LeaseHolder>,
    stored: &mut Stored,
    resume_at: &mut Option<u64>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let Reading {
        partition,
        fetch_bytes,
    } = reading;
    let label = partition.to_string();
    // The consumer was just created: its deliveries are numbered from 1, one by one.
    let mut next_delivery = 1u64;
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        if lease.is_some_and(|l| !l.is_held()) {
            return Err("the partition's lease is lost; consuming stops until it is held again".into());
        }
        let mut fetched = consumer
            .fetch()
            .max_messages(FETCH_MESSAGES)
            // What the server sends in one go stays well below what it lets a client have
            // pending (64 MiB) before it drops deliveries to it.
            .max_bytes(fetch_bytes)
            .expires(FETCH_WAIT)
            .messages()
            .await
            .map_err(|e| format!("fetch: {e}"))?;
        let mut messages = Vec::new();
        while let Some(m) = fetched.next().await {
            match m {
                Ok(m) => messages.push(m),
                // The server ends a fetch whose next message would pass its byte budget
                // with a status (409 "Message Size Exceeds MaxBytes"): what came before it
                // is a whole batch. An error before any message is the stream's failure.
                Err(_) if !messages.is_empty() => break,
                Err(e) => return Err(format!("fetch: {e}")),
            }
        }
        check_deliveries(&messages, &mut next_delivery)?;
        let Some(last) = messages.last() else {
            continue;
        };
        let pending = last.info().map(|i| i.pending).unwrap_or(0);
        if !store_all(state, &messages, partition, stored, stop).await? {
            return Ok(());
        }
        // AckPolicy::All: acknowledging the last message acknowledges the fetch; waiting
        // for the server's confirmation keeps a lost acknowledgement from going unseen.
        last.double_ack()
            .await
            .map_err(|e| format!("acknowledging: {e}"))?;
        // From now on the acknowledgement floor is where to resume.
        *resume_at = None;
        state.metrics.set(
            "didban_ingest_log_pending_messages",
            "Messages of the consumed partition not delivered yet (the consumer's lag).",
            &[("partition", &label)],
            pending as f64,
        );
    }
}

/// Checks that `messages` are the deliveries numbered from `next` on, one by one, and
/// moves `next` past them. A gap means NATS dropped deliveries on the way (a client too
/// slow to read: "slow consumer"); acknowledging after it would — with `AckPolicy::All` —
/// cover messages never stored, so the caller reopens the consumer at its floor instead.
fn check_deliveries(messages: &[Message], next: &mut u64) -> Result<(), String> {
    for m in messages {
        let got = m
            .info()
            .map_err(|e| format!("message without stream metadata: {e}"))?
            .consumer_sequence;
        if got != *next {
            return Err(format!(
                "deliveries lost on the way (expected delivery {}, got {got}); redelivering from the last acknowledgement",
                *next
            ));
        }
        *next = got + 1;
    }
    Ok(())
}

/// Stores every message of one fetch not stored yet, retrying a failing store until it
/// takes the batch; false when told to stop first.
async fn store_all(
    state: &AppState,
    messages: &[Message],
    partition: u32,
    stored: &mut Stored,
    stop: &mut watch::Receiver<bool>,
) -> Result<bool, String> {
    let label = partition.to_string();
    let mut first_attempt = true;
    loop {
        let grouped = group(messages, stored)?;
        let marks = &mut stored.marks;
        if first_attempt {
            count(state, "skipped", &label, grouped.skipped);
            count(state, "undecodable", &label, grouped.undecodable);
            first_attempt = false;
        }
        let stores = &state.stores;
        let at = |seq| Some(LogPosition { partition, seq });
        let (metrics_seq, spans_seq, logs_seq) = (grouped.metrics.1, grouped.spans.1, grouped.logs.1);
        let logs_first = grouped.logs_first;
        let (n_spans, n_logs) = (grouped.spans.0.len() as u64, grouped.logs.0.len() as u64);
        let metrics = async {
            match grouped.metrics.0.is_empty() {
                true => None,
                false => Some(stores.metrics.append_at(grouped.metrics.0, at(metrics_seq)).await),
            }
        };
        let spans = async {
            match grouped.spans.0.is_empty() {
                true => None,
                false => Some(stores.traces.append_at(grouped.spans.0, at(spans_seq)).await),
            }
        };
        let logs = async {
            match grouped.logs.0.is_empty() {
                true => None,
                false => Some(
                    stores
                        .logs
                        .append_from(grouped.logs.0, at(logs_seq), logs_first)
                        .await,
                ),
            }
        };
        let (exemplars_seq, n_exemplars) = (grouped.exemplars.1, grouped.exemplars.0.len() as u64);
        let exemplars = async {
            match grouped.exemplars.0.is_empty() {
                true => None,
                false => Some(
                    stores
                        .exemplars
                        .append_at(grouped.exemplars.0, at(exemplars_seq))
                        .await,
                ),
            }
        };
        let (metrics, spans, logs, exemplars) = tokio::join!(metrics, spans, logs, exemplars);
        if let Some(result) = exemplars {
            // As on the direct path, exemplars never hold the samples back: refusals and a
            // failing exemplar log are counted, and the batch is not tried again for them.
            marks.exemplars = exemplars_seq;
            note_exemplars(state, &label, n_exemplars, result);
        }
        let mut failure: Option<AppendError> = None;
        match metrics {
            Some(Ok(report)) => {
                marks.metrics = metrics_seq;
                count(state, "metrics", &label, report.accepted);
                for (reason, n) in &report.rejected {
                    state.metrics.inc(
                        "didban_samples_rejected_total",
                        "Samples (OTLP: data points refused before storage) refused, by protocol and reason.",
                        &[("protocol", "ingest_log"), ("reason", reason.as_str())],
                        *n as f64,
                    );
                }
            }
            Some(Err(e)) => failure = Some(e),
            None => {}
        }
        match spans {
            Some(Ok(_)) => {
                marks.traces = spans_seq;
                count(state, "traces", &label, n_spans);
            }
            Some(Err(e)) => failure = Some(e),
            None => {}
        }
        match logs {
            Some(Ok(_)) => {
                marks.logs = logs_seq;
                count(state, "logs", &label, n_logs);
            }
            Some(Err(e)) => failure = Some(e),
            None => {}
        }
        let Some(e) = failure else {
            return Ok(true);
        };
        if matches!(e, AppendError::Closed) {
            return Ok(false);
        }
        tracing::warn!(error = %e, partition, "a store refused a batch from the ingest log; retrying");
        if pause(stop).await {
            return Ok(false);
        }
    }
}

/// Decodes `messages` and groups those above their store's mark per signal, each group
/// with the highest sequence it holds; log records whose day's sealed indexes hold their
/// message are left out.
fn group(messages: &[Message], stored: &Stored) -> Result<Grouped, String> {
    let mut out = Grouped::default();
    let log_days_until = stored.log_days.highest();
    for m in messages {
        let seq = m
            .info()
            .map_err(|e| format!("message without stream metadata: {e}"))?
            .stream_sequence;
        let batch = match message::decode(&m.payload) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, seq, "dropping a message that is not an ingest log batch");
                out.undecodable += 1;
                continue;
            }
        };
        if seq <= stored.marks.of(&batch) {
            out.skipped += 1;
            continue;
        }
        match batch {
            Batch::Metrics(s) => {
                out.metrics.0.extend(s);
                out.metrics.1 = seq;
            }
            Batch::Spans(s) => {
                out.spans.0.extend(s);
                out.spans.1 = seq;
            }
            Batch::Exemplars(e) => {
                out.exemplars.0.extend(e);
                out.exemplars.1 = seq;
            }
            Batch::Logs(mut r) => {
                if seq <= log_days_until {
                    r.retain(|r| !stored.log_days.holds(&day_of(r.timestamp_unix_nano), seq));
                    if r.is_empty() {
                        out.skipped += 1;
                        continue;
                    }
                }
                out.logs.0.extend(r);
                out.logs.1 = seq;
                out.logs_first.get_or_insert(seq);
            }
        }
    }
    Ok(out)
}

/// Counts what the exemplar store did with a batch (stored, refused by reason, or lost to
/// a failing exemplar log).
fn note_exemplars(
    state: &AppState,
    partition: &str,
    n: u64,
    result: Result<didban_store::ExemplarReport, AppendError>,
) {
    let rejected = |reason: &str, n: u64| {
        state.metrics.inc(
            "didban_exemplars_rejected_total",
            "Exemplars refused, by protocol and reason.",
            &[("protocol", "ingest_log"), ("reason", reason)],
            n as f64,
        );
    };
    match result {
        Ok(report) => {
            count(state, "exemplars", partition, report.accepted);
            for (reason, n) in &report.refused {
                rejected(reason.as_str(), *n);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, partition, "exemplars from the ingest log not stored");
            rejected("storage_error", n);
        }
    }
}

/// Counts `n` items of `kind` (a signal stored, or messages skipped or undecodable).
fn count(state: &AppState, kind: &str, partition: &str, n: u64) {
    if n == 0 {
        return;
    }
    state.metrics.inc(
        "didban_ingest_log_consumed_total",
        "What the ingest log consumer did, by kind: samples, spans, log records or exemplars stored (metrics, traces, logs, exemplars), messages skipped as already stored (skipped) or dropped (undecodable).",
        &[("kind", kind), ("partition", partition)],
        n as f64,
    );
}

/// Waits until this process holds `lease`; false when told to stop first.
async fn wait_for_lease(lease: &LeaseHolder, partition: u32, stop: &mut watch::Receiver<bool>) -> bool {
    let mut changes = lease.watch();
    let mut said = false;
    while !lease.is_held() {
        if !said {
            tracing::info!(
                partition,
                lease = lease.lease().name(),
                "waiting for the partition's lease"
            );
            said = true;
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(RETRY_PAUSE) => {}
            _ = stop.changed() => return false,
        }
        if *stop.borrow() {
            return false;
        }
    }
    true
}

/// Waits [`RETRY_PAUSE`]; true when told to stop meanwhile.
async fn pause(stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(RETRY_PAUSE) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}
