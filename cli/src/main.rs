//! `didban`: the Didban server and its command-line tools.

mod notify;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use didban_alerting::rules::{RuleError, RuleGroup};
use didban_base::{parse_bytes, parse_duration};
use didban_collector::config::auth::{parse_anonymous_role, AuthMode};
use didban_collector::config::{parse_addr, Config};
use didban_store::FsyncMode;

/// Didban — metrics, traces, logs and alerts in one binary.
#[derive(Parser, Debug)]
#[command(name = "didban", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (the default when no command is given).
    Serve(Box<ServeArgs>),
    /// Check configuration files without starting the server.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Run unit tests without starting the server.
    #[command(subcommand)]
    Test(TestCommand),
    /// Notification tools: send a test notification to a receiver.
    #[command(subcommand)]
    Notify(notify::NotifyCommand),
    /// Start a server and feed it a simulated shop (web service, database, cache, queues,
    /// hosts, serverless functions) so every page has data; see docs/demo.md.
    Demo(Box<DemoArgs>),
}

/// Flags of `didban demo`.
#[derive(Args, Debug)]
struct DemoArgs {
    /// Data directory of the in-process server
    #[arg(long, value_name = "DIR", default_value = "./didban-demo-data")]
    data_dir: PathBuf,
    /// Address of the in-process server's query API, remote_write and UI [default: 127.0.0.1:9480]
    #[arg(long, value_name = "ADDR")]
    http_addr: Option<String>,
    /// Address of the in-process server's OTLP/gRPC receiver [default: 127.0.0.1:4317]
    #[arg(long, value_name = "ADDR")]
    otlp_grpc_addr: Option<String>,
    /// Address of the in-process server's OTLP/HTTP receiver [default: 127.0.0.1:4318]
    #[arg(long, value_name = "ADDR")]
    otlp_http_addr: Option<String>,
    /// Rule directory loaded by the in-process server besides <data-dir>/rules
    /// [default: ./alerting/rules when it exists]
    #[arg(long, value_name = "DIR")]
    packs_dir: Option<PathBuf>,
    /// Feed a Didban that already runs: the URL of its HTTP port (no server is started)
    #[arg(long, value_name = "URL", requires = "target_otlp_grpc")]
    target_http: Option<String>,
    /// With --target-http: the URL of its OTLP/gRPC receiver, e.g. http://127.0.0.1:4317
    #[arg(long, value_name = "URL", requires = "target_http")]
    target_otlp_grpc: Option<String>,
    /// Stop after this long, e.g. 10m [default: until Ctrl-C]
    #[arg(long, value_name = "DURATION")]
    duration: Option<String>,
    /// History sent at start, so charts are full at once (at most 6h)
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    backfill: String,
    /// Traffic scale: 1 is about 4 web requests and 0.8 function invocations a second
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0)]
    rate: f64,
    /// Seed of the simulation, for a repeatable run [default: the clock]
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
}

impl DemoArgs {
    fn into_options(self) -> anyhow::Result<didban_demo::DemoOptions> {
        use didban_demo::{DemoOptions, Target};
        let duration = match &self.duration {
            Some(d) => Some(parse_duration(d).context("--duration")?),
            None => None,
        };
        let backfill = parse_duration(&self.backfill).context("--backfill")?;
        if backfill > std::time::Duration::from_secs(6 * 3600) {
            anyhow::bail!(
                "--backfill {} is longer than 6h, the oldest history the store accepts",
                self.backfill
            );
        }
        let target = match (self.target_http, self.target_otlp_grpc) {
            (Some(http), Some(otlp_grpc)) => {
                for (flag, url) in [("--target-http", &http), ("--target-otlp-grpc", &otlp_grpc)] {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        anyhow::bail!("{flag} {url:?} must start with http:// or https://");
                    }
                }
                Target::Remote { http, otlp_grpc }
            }
            _ => {
                let mut c = Config {
                    data_dir: self.data_dir,
                    ..Config::default()
                };
                if let Some(v) = &self.http_addr {
                    c.http_addr = parse_addr("--http-addr", v)?;
                }
                if let Some(v) = &self.otlp_grpc_addr {
                    c.otlp_grpc_addr = parse_addr("--otlp-grpc-addr", v)?;
                }
                if let Some(v) = &self.otlp_http_addr {
                    c.otlp_http_addr = parse_addr("--otlp-http-addr", v)?;
                }
                let shipped = PathBuf::from("alerting/rules");
                c.alerting.packs_dir = match self.packs_dir {
                    Some(p) => Some(p),
                    None if shipped.is_dir() => Some(shipped),
                    None => None,
                };
                Target::InProcess(Box::new(c))
            }
        };
        Ok(DemoOptions {
            target,
            duration,
            backfill,
            rate: self.rate,
            seed: self.seed,
        })
    }
}

/// `didban demo`: runs until Ctrl-C, SIGTERM or --duration.
fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let options = args.into_options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            didban_collector::shutdown::wait_for_signal().await;
            let _ = stop_tx.send(true);
        });
        didban_demo::run(options, stop_rx).await
    })
}

#[derive(Subcommand, Debug)]
enum TestCommand {
    /// Run rule unit tests in promtool's format (`promtool test rules`); exit code 1 when
    /// any fails. With no file: the built-in rule packs' own tests.
    Rules {
        /// Test files (YAML); none = the built-in packs' tests.
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

/// `didban test rules`: runs each file (the built-in packs' tests when none is given);
/// true when all pass.
fn test_rules(files: &[PathBuf]) -> anyhow::Result<bool> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut ok = true;
    let mut report = |name: &std::path::Path, outcome: Result<(), Vec<String>>| {
        println!("Unit Testing: {}", name.display());
        match outcome {
            Ok(()) => println!("  SUCCESS"),
            Err(failures) => {
                ok = false;
                println!("  FAILED:");
                for line in failures {
                    println!("    {line}");
                }
            }
        }
        println!();
    };
    if files.is_empty() {
        for t in didban_alerting::rules::packs::PACK_TESTS {
            report(
                &t.file_name(),
                rt.block_on(didban_alerting::rules::unittest::run_builtin_test(t)),
            );
        }
    }
    for f in files {
        report(f, rt.block_on(didban_alerting::rules::unittest::run_test_file(f)));
    }
    Ok(ok)
}

#[derive(Subcommand, Debug)]
enum CheckCommand {
    /// Validate Prometheus rule files like `promtool check rules`: every problem is printed
    /// as FILE:LINE: reason; the exit code is 1 when any file has problems. With no file:
    /// the built-in rule packs.
    Rules {
        /// Rule files (YAML); none = the built-in packs.
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

/// `didban check rules`: prints a report per file (the built-in packs when no file is
/// given); true when every file is valid.
fn check_rules(files: &[PathBuf]) -> bool {
    let mut ok = true;
    let mut report = |name: &std::path::Path, outcome: Result<Vec<RuleGroup>, Vec<RuleError>>| {
        println!("Checking {}", name.display());
        match outcome {
            Ok(groups) => {
                let n: usize = groups.iter().map(|g| g.rules.len()).sum();
                println!("  SUCCESS: {n} rules found");
            }
            Err(errors) => {
                ok = false;
                println!("  FAILED:");
                for e in errors {
                    eprintln!("{e}");
                }
            }
        }
        println!();
    };
    if files.is_empty() {
        for p in didban_alerting::rules::packs::PACKS {
            report(&p.file_name(), p.groups());
        }
    }
    for f in files {
        report(f, didban_alerting::rules::load_file(f));
    }
    ok
}

/// Flags of `didban serve`. Precedence: flag > environment variable > config file > default.
#[derive(Args, Debug)]
struct ServeArgs {
    /// TOML config file; every key is documented in docs/configuration.md.
    #[arg(long, env = "DIDBAN_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (WAL, blocks, indexes) [default: ./didban-data]
    #[arg(long, env = "DIDBAN_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the query API, remote_write, /metrics and UI [default: 127.0.0.1:9480]
    #[arg(long, env = "DIDBAN_HTTP_ADDR", value_name = "ADDR")]
    http_addr: Option<String>,
    /// Address of the OTLP/gRPC receiver [default: 127.0.0.1:4317]
    #[arg(long, env = "DIDBAN_OTLP_GRPC_ADDR", value_name = "ADDR")]
    otlp_grpc_addr: Option<String>,
    /// Address of the OTLP/HTTP receiver [default: 127.0.0.1:4318]
    #[arg(long, env = "DIDBAN_OTLP_HTTP_ADDR", value_name = "ADDR")]
    otlp_http_addr: Option<String>,
    /// WAL fsync policy: batch (ack after fsync), interval, off [default: batch]
    #[arg(long, env = "DIDBAN_FSYNC", value_name = "MODE", value_parser = parse_fsync)]
    fsync: Option<FsyncMode>,
    /// Delete blocks older than this, e.g. 15d [default: 15d]
    #[arg(long, env = "DIDBAN_RETENTION_TIME", value_name = "DURATION")]
    retention_time: Option<String>,
    /// Delete the oldest blocks past this size, e.g. 50GiB; 0 = no limit [default: 0]
    #[arg(long, env = "DIDBAN_RETENTION_SIZE", value_name = "SIZE")]
    retention_size: Option<String>,
    /// Memory budget of the metric head: new series are refused past it [default: 35% of storage.memory_limit]
    #[arg(long, env = "DIDBAN_HEAD_MEMORY_LIMIT", value_name = "SIZE")]
    head_memory_limit: Option<String>,
    /// Largest request body after decompression [default: 20MiB]
    #[arg(long, env = "DIDBAN_MAX_REQUEST_BODY", value_name = "SIZE")]
    max_request_body: Option<String>,
    /// Do not collect this host's CPU, memory, disk and network metrics in-process
    #[arg(long, env = "DIDBAN_NO_HOST_METRICS")]
    no_host_metrics: bool,
    /// Time a head covers before it is cut into a Parquet block [default: 2h]
    #[arg(long, env = "DIDBAN_BLOCK_DURATION", value_name = "DURATION")]
    block_duration: Option<String>,
    /// Sign-in: true, false, or auto (required unless every listener is on loopback)
    /// [default: auto]
    #[arg(long, env = "DIDBAN_AUTH", value_name = "MODE")]
    auth: Option<String>,
    /// Serve without sign-in on a non-loopback address although auth is off
    #[arg(long, env = "DIDBAN_ALLOW_ANONYMOUS")]
    allow_anonymous: bool,
    /// Role of requests without credentials: none, viewer, editor, admin
    /// [default: admin when sign-in is off, none when on]
    #[arg(long, env = "DIDBAN_ANONYMOUS_ROLE", value_name = "ROLE")]
    anonymous_role: Option<String>,
    /// Sessions end this long after their last use [default: 24h]
    #[arg(long, env = "DIDBAN_SESSION_TTL", value_name = "DURATION")]
    session_ttl: Option<String>,
    /// Always mark the session cookie Secure (the server is behind HTTPS)
    #[arg(long, env = "DIDBAN_SECURE_COOKIES")]
    secure_cookies: bool,
    /// PromQL semantics: v3 (Prometheus 3) or v2 (Prometheus 2.x) [default: v3]
    #[arg(long, env = "DIDBAN_PROMQL_COMPAT", value_name = "VERSION")]
    promql_compat: Option<String>,
    /// What this process runs: all, ingester, querier, compactor (split roles need the
    /// metastore; docs/deployment.md) [default: all]
    #[arg(long, env = "DIDBAN_ROLE", value_name = "ROLE")]
    role: Option<String>,
}

/// mimalloc instead of glibc malloc: ingest allocates many small, short-lived buffers
/// (decoded requests, label strings) and glibc's free-list consolidation took about a third
/// of ingest CPU in profiles. Its arenas are committed lazily (`.cargo/config.toml` sets
/// the compile-time default), so memory it purges leaves the RSS. The feature
/// `system-alloc` leaves glibc's malloc in place, for heap profilers that intercept it
/// (heaptrack; `docs/benchmarks.md`).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn parse_fsync(s: &str) -> Result<FsyncMode, String> {
    match s {
        "batch" => Ok(FsyncMode::Batch),
        "interval" => Ok(FsyncMode::Interval),
        "off" => Ok(FsyncMode::Off),
        other => Err(format!("{other:?} is not one of batch, interval, off")),
    }
}

impl ServeArgs {
    /// The configuration: defaults, then the file, then flags and environment.
    fn into_config(self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        // A reload (SIGHUP, POST /-/reload) reads receivers and routes from this file again.
        c.alerting.source_file = self.config.clone();
        if let Some(v) = self.data_dir {
            c.data_dir = v;
        }
        let addr = |key: &str, v: Option<String>, target: &mut SocketAddr| -> anyhow::Result<()> {
            if let Some(v) = v {
                *target = parse_addr(key, &v)?;
            }
            Ok(())
        };
        addr("--http-addr", self.http_addr, &mut c.http_addr)?;
        addr("--otlp-grpc-addr", self.otlp_grpc_addr, &mut c.otlp_grpc_addr)?;
        addr("--otlp-http-addr", self.otlp_http_addr, &mut c.otlp_http_addr)?;
        if let Some(v) = self.fsync {
            c.storage.fsync = v;
        }
        if let Some(v) = self.retention_time {
            c.storage.retention_time = parse_duration(&v).context("--retention-time")?;
            // The downsampling ages set in the file must still come before the new retention.
            c.storage
                .downsample
                .check(c.storage.retention_time)
                .context("--retention-time")?;
        }
        if let Some(v) = self.retention_size {
            c.storage.retention_bytes = parse_bytes(&v).context("--retention-size")?;
        }
        if let Some(v) = self.head_memory_limit {
            c.storage.head_memory_bytes = parse_bytes(&v).context("--head-memory-limit")?;
        }
        if let Some(v) = self.max_request_body {
            c.limits.max_body_bytes = parse_bytes(&v).context("--max-request-body")? as usize;
        }
        if self.no_host_metrics {
            c.host_metrics.enabled = false;
        }
        if let Some(v) = self.promql_compat {
            c.query.promql_compat = v
                .parse::<didban_store::promql::PromqlCompat>()
                .context("--promql-compat")?;
        }
        if let Some(v) = self.block_duration {
            c.storage.block_duration = parse_duration(&v).context("--block-duration")?;
        }
        if let Some(v) = self.auth {
            c.auth.enabled = AuthMode::parse(&v).context("--auth / DIDBAN_AUTH")?;
        }
        if self.allow_anonymous {
            c.auth.allow_anonymous = true;
        }
        if let Some(v) = self.anonymous_role {
            c.auth.anonymous_role =
                Some(parse_anonymous_role(&v).context("--anonymous-role / DIDBAN_ANONYMOUS_ROLE")?);
        }
        if let Some(v) = self.session_ttl {
            c.auth.session_ttl = parse_duration(&v).context("--session-ttl")?;
        }
        if self.secure_cookies {
            c.auth.secure_cookies = true;
        }
        // The first admin's password is taken from the environment only (a flag would show
        // in `ps`).
        let user = std::env::var("DIDBAN_ADMIN_USER").ok().filter(|v| !v.is_empty());
        let password = std::env::var("DIDBAN_ADMIN_PASSWORD")
            .ok()
            .filter(|v| !v.is_empty());
        c.auth.bootstrap_admin = match (user, password) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => None,
            _ => anyhow::bail!("set both DIDBAN_ADMIN_USER and DIDBAN_ADMIN_PASSWORD, or neither"),
        };
        if let Some(v) = self.role {
            c.cluster.role = didban_collector::config::cluster::Role::parse(&v).context("--role")?;
        }
        Ok(c)
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DIDBAN_LOG").unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut cli = Cli::parse();
    if cli.command.is_none() {
        // `didban` alone means `didban serve`, still honouring DIDBAN_* variables.
        cli = Cli::parse_from(["didban", "serve"]);
    }
    let args = match cli.command {
        Some(Command::Serve(args)) => *args,
        Some(Command::Check(CheckCommand::Rules { files })) => {
            if check_rules(&files) {
                return Ok(());
            }
            std::process::exit(1);
        }
        Some(Command::Demo(args)) => return demo(*args),
        Some(Command::Notify(cmd)) => {
            if notify::run(cmd)? {
                return Ok(());
            }
            std::process::exit(1);
        }
        Some(Command::Test(TestCommand::Rules { files })) => {
            if test_rules(&files)? {
                return Ok(());
            }
            std::process::exit(1);
        }
        None => anyhow::bail!("no command given"),
    };
    let config = args.into_config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(didban_collector::server::run(config))
}
