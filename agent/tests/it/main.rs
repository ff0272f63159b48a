//! The agent against real servers (PostgreSQL, Redis, RabbitMQ, Python exporters and
//! receivers): one test binary for the crate.
#![allow(clippy::unwrap_used)]

mod agent_e2e;
mod celery;
mod celery_amqp;
mod common;
mod export;
mod export_keeps;
mod gunicorn;
mod log_corpus;
mod logs;
mod nginx;
mod pgbouncer;
mod postgres;
mod postgres_catalogue;
mod probe;
mod rabbitmq;
mod receiver;
mod redis;
mod scrape;
mod statsd;
mod tls;
