//! Server-only code: configuration, telemetry, AWS clients, services and the HTTP layer.

pub mod artifacts;
pub mod audit;
pub mod auth;
pub mod aws;
pub mod catalog;
pub mod clock;
pub mod commands;
pub mod config;
pub mod error;
pub mod health;
pub mod http;
pub mod http_client;
pub mod ids;
pub mod lifecycle;
pub mod metrics;
pub mod password;
pub mod publish_rules;
pub mod rate_limit;
pub mod repo;
pub mod secret_keys;
pub mod seed;
pub mod services;
pub mod state;
pub mod store;
pub mod stream_gate;
pub mod telemetry;
