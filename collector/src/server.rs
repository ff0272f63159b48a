//! The composition root: opens the stores and sign-in, binds the listeners, runs the
//! background tasks (maintenance, self-monitoring, alerting, the host collector) and shuts
//! everything down in order on SIGTERM/SIGINT.

use anyhow::Context;
use axum::routing::get;
use axum::Router;
use didban_auth::{Auth, AuthSettings, Need, Require};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::cluster::Role;
use crate::config::listen::ListenerName;
use crate::config::Config;
use crate::datadir::DataDirLock;
use crate::listen::serve::{serve, Listener, ListenerTls};
use crate::listen::tls::ReloadingTls;
use crate::shutdown::{stopped, wait_for_signal};
use crate::state::AppState;
use crate::stores::{self, Stores};
use crate::{api, cluster, ingest};
use didban_base::now_ms;

/// Runs the server until SIGTERM or SIGINT, then stops accepting, lets in-flight requests
/// finish, and closes the WAL cleanly.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutdown signal received; draining");
        let _ = stop_tx.send(true);
    });
    run_until(config, stop_rx).await
}

/// Like [`run`], but stops when `stop` turns true; tests drive it directly.
pub async fn run_until(mut config: Config, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    // Served over HTTPS, the session cookie must never travel over plain HTTP.
    if config.tls.on(ListenerName::Http) {
        config.auth.secure_cookies = true;
    }
    let role = config.cluster.role;
    config.cluster.check(config.storage.metastore.is_some())?;
    if !role.ingests() {
        // The host collector ships into this process, whose head nobody reads.
        config.host_metrics.enabled = false;
    }
    let auth_settings = config.auth.resolve(&[
        ("http_addr", config.http_addr),
        ("otlp_http_addr", config.otlp_http_addr),
        ("otlp_grpc_addr", config.otlp_grpc_addr),
    ])?;
    let tls = ReloadingTls::load(&config.tls).context("loading the [tls] files")?;
    match crate::listen::nofile::raise_nofile_limit() {
        Ok(limit) => info!(open_files = ?limit, "open-file limit (RLIMIT_NOFILE), at the hard limit"),
        Err(e) => warn!(error = %e, "could not raise the open-file limit"),
    }
    let _data_dir_lock = DataDirLock::acquire(&config.data_dir)?;
    info!(
        available = config.storage.available_memory.bytes,
        source = %config.storage.available_memory.source,
        memory_limit = config.storage.memory_limit_bytes,
        metrics_head = config.storage.head_memory_bytes,
        block_index_cache = config.storage.block_index_cache_bytes,
        traces_head = config.traces.head_memory_bytes,
        logs_pending = config.logs.max_pending_bytes,
        logs_writer = config.logs.writer_memory_bytes,
        "memory budgets"
    );
    let auth = open_auth(&config, auth_settings)?;
    let stores_config = config.clone();
    let stores = tokio::task::spawn_blocking(move || Stores::open(&stores_config))
        .await
        .context("opening the stores")??;
    let mut state = AppState::new(stores, config.clone());
    let (announcer, cluster_reader) = start_cluster_role(&config, &mut state).await?;
    let consumer = start_ingest_log(&config, &mut state, stop.clone()).await?;

    let http = TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("binding http_addr {}", config.http_addr))?;
    let otlp_http = TcpListener::bind(config.otlp_http_addr)
        .await
        .with_context(|| format!("binding otlp_http_addr {}", config.otlp_http_addr))?;
    let otlp_grpc = TcpListener::bind(config.otlp_grpc_addr)
        .await
        .with_context(|| format!("binding otlp_grpc_addr {}", config.otlp_grpc_addr))?;
    info!(
        data_dir = %config.data_dir.display(),
        http = %local(&http),
        otlp_http = %local(&otlp_http),
        otlp_grpc = %local(&otlp_grpc),
        "didban is serving"
    );

    let alerting = if config.alerting.is_enabled() && role.alerts() {
        let storage: std::sync::Arc<dyn didban_alerting::eval::RuleStorage> = match cluster_reader {
            Some(reader) => std::sync::Arc::new(cluster::reader::ClusterRuleStorage {
                reader,
                db: state.stores.metrics.clone(),
            }),
            None => state.stores.metrics.clone(),
        };
        let scheme = if config.tls.on(ListenerName::Http) {
            "https"
        } else {
            "http"
        };
        let external_url = format!("{scheme}://{}", local(&http));
        Some(
            didban_alerting::Alerting::new(
                &config.alerting,
                &config.data_dir,
                &external_url,
                storage,
                state.engine.clone(),
                Some(std::sync::Arc::new(cluster::log_read::ClusterLogs::new(
                    state.stores.logs.clone(),
                    state.cluster.clone(),
                ))),
            )
            .context("starting the alert engine")?,
        )
        .inspect(|a| {
            if let Some(path) = config.source.clone() {
                a.set_settings_source(std::sync::Arc::new(move || {
                    Config::load(&path)
                        .map(|c| c.alerting)
                        .map_err(|e| format!("{e:#}"))
                }));
            }
        })
    } else {
        None
    };

    let mut main_router = Router::new()
        .route("/-/healthy", get(|| async { "Didban is Healthy.\n" }))
        .route("/-/ready", get(ready).with_state(state.stores.clone()))
        .route_layer(Require::api(Need::Open))
        .merge(api::router(state.clone(), stop.clone()));
    main_router = if role.ingests() {
        main_router.merge(ingest::remote_write_router(state.clone()))
    } else {
        main_router.merge(cluster::refuse_writes(role))
    };
    // `check` above made sure a role that serves its heads has the secret.
    if let Some(secret) = config.cluster.secret.as_deref().filter(|_| role.serves_heads()) {
        main_router = main_router.merge(cluster::internal_router(
            &state.stores,
            secret,
            state.metrics.clone(),
        ));
    }
    if let Some(a) = &alerting {
        main_router = main_router.merge(didban_alerting::http::router(a.clone()));
    }
    main_router = main_router
        .merge(didban_ui::pages::account::router(auth.clone()))
        .merge(didban_ui::router(state.ui_context(alerting.clone())));
    // Each router declared what its routes need; paths none of them has still need a viewer
    // before they learn that nothing is there.
    let main_router = main_router
        .fallback_service(didban_auth::not_found(Require::unmatched(
            didban_ui::pages::error_page,
        )))
        .layer(axum::middleware::from_fn_with_state(
            auth.clone(),
            didban_auth::resolve,
        ))
        .layer(axum::middleware::from_fn(
            crate::listen::headers::security_headers,
        ));
    let otlp_writes = if role.ingests() {
        ingest::otlp_http_router(state.clone())
    } else {
        cluster::refuse_writes(role)
    };
    let otlp_router = otlp_writes
        .fallback_service(didban_auth::not_found(Require::ingest()))
        .layer(axum::middleware::from_fn_with_state(
            auth.clone(),
            didban_auth::resolve,
        ));

    let grpc_check: Option<ingest::grpc::IngestCheck> = if auth.settings().required {
        let a = auth.clone();
        Some(std::sync::Arc::new(move |value: Option<&str>| {
            a.ingest_allowed(value)
        }))
    } else {
        None
    };
    let grpc_router = ingest::otlp_grpc_router(state.clone(), grpc_check);
    // With TLS on the gRPC port, the in-process host collector ships over a plain listener on
    // loopback instead (an ephemeral port, still behind the ingest token when sign-in is
    // required): it has no client certificate and the server's certificate names the public
    // host, not 127.0.0.1.
    let mut internal_grpc = None;
    let mut grpc_addr = otlp_grpc.local_addr().context("reading the OTLP/gRPC address")?;
    if config.host_metrics.enabled && config.tls.on(ListenerName::OtlpGrpc) {
        let loopback: std::net::IpAddr = if grpc_addr.is_ipv6() {
            std::net::Ipv6Addr::LOCALHOST.into()
        } else {
            std::net::Ipv4Addr::LOCALHOST.into()
        };
        let internal = TcpListener::bind((loopback, 0))
            .await
            .context("binding the host collector's loopback OTLP/gRPC listener")?;
        grpc_addr = internal
            .local_addr()
            .context("reading the loopback OTLP/gRPC address")?;
        internal_grpc = Some(internal);
    }
    // The in-process host collector authenticates with a token that exists only in this
    // process's memory (never written anywhere, new at each start).
    let host_token = if auth.settings().required {
        Some(
            auth.internal_ingest_token()
                .context("creating the host collector's token")?,
        )
    } else {
        None
    };
    let host_agent = crate::host_metrics::start(&config, grpc_addr, host_token, state.clone());
    let maintenance = tokio::spawn(stores::maintenance_loop(state.clone(), stop.clone()));
    let self_scrape = tokio::spawn(crate::selfmon::scrape::self_scrape_loop(
        state.clone(),
        stop.clone(),
    ));
    let alerting_task = alerting.map(|a| tokio::spawn(a.run(stop.clone())));
    let tls_watch = tls
        .clone()
        .map(|t| tokio::spawn(t.watch(config.tls.reload_interval, stop.clone())));

    let listener = |tcp: TcpListener, name: ListenerName| Listener {
        tcp,
        tls: tls
            .as_ref()
            .filter(|_| config.tls.on(name))
            .map(|source| ListenerTls {
                source: source.clone(),
                client_auth: config.tls.client_auth_on(name),
            }),
        limits: config.listen.clone(),
        name: name.key(),
        metrics: state.metrics.clone(),
    };
    let http_task = tokio::spawn(serve(
        listener(http, ListenerName::Http),
        main_router,
        stop.clone(),
    ));
    let otlp_http_task = tokio::spawn(serve(
        listener(otlp_http, ListenerName::OtlpHttp),
        otlp_router,
        stop.clone(),
    ));
    let internal_task = internal_grpc.map(|tcp| {
        let plain = Listener {
            tcp,
            tls: None,
            limits: config.listen.clone(),
            name: "host_collector_grpc",
            metrics: state.metrics.clone(),
        };
        tokio::spawn(serve(plain, grpc_router.clone(), stop.clone()))
    });
    // A role that does not ingest closes the OTLP/gRPC port (gRPC clients see the
    // connection refused rather than data landing in a head nobody reads).
    let grpc_task = if role.ingests() {
        tokio::spawn(serve(
            listener(otlp_grpc, ListenerName::OtlpGrpc),
            grpc_router,
            stop.clone(),
        ))
    } else {
        drop(otlp_grpc);
        tokio::spawn(async { Ok(()) })
    };

    // The host collector stops first, while the receivers still accept its last batch;
    // whatever it cannot send stays in its disk buffer for the next start.
    if let Some(agent) = host_agent {
        stopped(stop.clone()).await;
        agent.shutdown().await;
    }
    let (a, b, c) = tokio::join!(http_task, otlp_http_task, grpc_task);
    a.context("http server task")?.context("http server")?;
    b.context("otlp http server task")?.context("otlp http server")?;
    c.context("otlp grpc server task")?.context("otlp grpc server")?;
    if let Some(t) = internal_task {
        t.await
            .context("loopback grpc server task")?
            .context("loopback grpc server")?;
    }
    if let Some(t) = tls_watch {
        let _ = t.await;
    }
    if let Some(t) = consumer {
        let _ = t.await;
    }
    let _ = maintenance.await;
    let _ = self_scrape.await;
    if let Some(t) = alerting_task {
        let _ = t.await;
    }
    if let Some(a) = announcer {
        a.leave().await;
    }
    if let Err(e) = state.metadata.save() {
        warn!(error = %e, "could not save metric metadata");
    }

    if let Err(e) = auth.sessions().flush(now_ms()) {
        warn!(error = %e, "could not save sessions");
    }
    state.stores.close().await?;
    info!("didban stopped cleanly");
    Ok(())
}

/// With `[ingest_log]` on a role that ingests: the receivers publish to the stream
/// (`state.ingest_log`), and when the process consumes a partition its consumer is
/// started (returned, to wait for at shutdown, before the stores close).
async fn start_ingest_log(
    config: &Config,
    state: &mut AppState,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(log_config) = config.ingest_log.clone() else {
        return Ok(None);
    };
    if !config.cluster.role.ingests() {
        info!(
            role = config.cluster.role.name(),
            "[ingest_log] is ignored: this role does not ingest"
        );
        return Ok(None);
    }
    let partition = log_config.partition;
    info!(url = %log_config.url, stream = %log_config.stream, partitions = log_config.partitions, partition = ?partition, "ingest log on");
    let stream = log_config.stream.clone();
    let log = std::sync::Arc::new(crate::ingest_log::IngestLog::connect(log_config).await?);
    state.ingest_log = Some(log.clone());
    let Some(partition) = partition else {
        return Ok(None);
    };
    // With a metastore, one process at a time consumes a partition (its lease, renewed
    // like a member's announcement).
    let lease = config.storage.metastore.as_ref().map(|m| {
        let name = format!("ingest-partition/{}/{stream}/{partition}", m.tenant);
        let options = didban_coord::ConnectOptions {
            ca_file: m.ca_file.clone(),
            timeout: m.connect_timeout,
        };
        let lease = didban_coord::Lease::new(name, didban_coord::holder_id(), config.cluster.member_ttl);
        didban_coord::LeaseHolder::start(m.url.clone(), options, lease, &tokio::runtime::Handle::current())
    });
    let consumer = crate::ingest_log::consumer::run(state.clone(), log, partition, lease, stop);
    Ok(Some(tokio::spawn(consumer)))
}

/// Sets up what the role needs besides the stores: a role that reads the cluster
/// (querier, alerting) reads through the live ingesters' heads (`state.reader`, also
/// returned for the alert engine); a role with a head others must read (ingester,
/// alerting) announces itself (returned, to leave at shutdown).
async fn start_cluster_role(
    config: &Config,
    state: &mut AppState,
) -> anyhow::Result<(
    Option<didban_coord::Announcer>,
    Option<std::sync::Arc<cluster::reader::ClusterReader>>,
)> {
    let cluster = &config.cluster;
    let Some(metastore) = config
        .storage
        .metastore
        .as_ref()
        .filter(|_| cluster.role != Role::All)
    else {
        return Ok((None, None));
    };
    let options = didban_coord::ConnectOptions {
        ca_file: metastore.ca_file.clone(),
        timeout: metastore.connect_timeout,
    };
    let own_id = didban_coord::holder_id();
    let mut announcer = None;
    if cluster.role.serves_heads() {
        let address = cluster.advertise_url.clone().unwrap_or_default();
        let member = didban_coord::Member {
            cluster: metastore.tenant.clone(),
            role: cluster::reader::INGESTER_ROLE.to_string(),
            id: own_id.clone(),
            address: address.clone(),
            ttl: cluster.member_ttl,
        };
        info!(role = cluster.role.name(), advertise_url = %address, "announcing this process's head to queriers");
        announcer = Some(didban_coord::Announcer::start(
            metastore.url.clone(),
            options.clone(),
            member,
            &tokio::runtime::Handle::current(),
        ));
    }
    let mut reader = None;
    if cluster.role.reads_cluster() {
        let started = cluster::reader::ClusterReader::start(
            state.stores.metrics.clone(),
            metastore.url.clone(),
            options,
            metastore.tenant.clone(),
            cluster,
            announcer.as_ref().map(|_| own_id),
        )
        .await
        .context("starting the cluster read path")?;
        info!(
            ingesters = started.ingesters().len(),
            "reading blocks and the ingesters' heads"
        );
        let started = std::sync::Arc::new(started);
        state.reader = started.clone();
        state.cluster = Some(started.clone());
        reader = Some(started);
    }
    Ok((announcer, reader))
}

/// Opens users, sessions and tokens, and creates the first admin when there is none; a
/// generated password is printed to stderr this once, as lines that each stand alone (no
/// blank lines, no colour) so `journalctl -u didban | grep -A2 'first admin'` finds it.
fn open_auth(config: &Config, settings: AuthSettings) -> anyhow::Result<std::sync::Arc<Auth>> {
    let required = settings.required;
    let auth = Auth::open(&config.data_dir, settings).context("opening <data_dir>/auth")?;
    if let Some(first) = auth.bootstrap_admin(config.auth.bootstrap_admin.clone())? {
        match first.generated_password {
            Some(password) => {
                eprintln!(
                    "Didban created the first admin account (the password is shown only this once):\n  user:     {}\n  password: {password}\nSign in, then add users and change passwords on /admin/users.",
                    first.user
                );
                info!(user = %first.user, "created the first admin with a generated password (printed to stderr)");
            }
            None => info!(user = %first.user, "created the first admin from DIDBAN_ADMIN_USER"),
        }
    }
    info!(sign_in_required = required, "auth");
    Ok(auth)
}

fn local(l: &TcpListener) -> String {
    l.local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// `/-/ready`: 200 while the stores accept writes; 503 naming each WAL fault while one lasts
/// (ingest answers 503 then too), so a balancer or probe sees what clients see.
async fn ready(
    axum::extract::State(stores): axum::extract::State<Stores>,
) -> (axum::http::StatusCode, String) {
    let faults = stores.faults();
    if faults.is_empty() {
        return (axum::http::StatusCode::OK, "Didban is Ready.\n".to_string());
    }
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        format!("Didban is not ready: {}\n", faults.join("; ")),
    )
}
