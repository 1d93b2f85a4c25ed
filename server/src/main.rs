//! The NexusAI Toolkit server: wires configuration, telemetry, state and the router.

use std::{net::SocketAddr, process::ExitCode};

use app::ssr::{
    commands::{self, Command, CommandError},
    config::Config,
    http,
    state::AppState,
    telemetry,
};
use leptos::config::get_configuration;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("nexus-toolkit: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match telemetry::init(config.log_format, config.otlp_traces) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("nexus-toolkit: configuration error: {e}");
            return ExitCode::from(2);
        }
    };

    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match Command::parse(&args) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("nexus-toolkit: {e}\n{}", commands::USAGE);
            return ExitCode::from(2);
        }
    };
    let outcome = match command {
        Command::Serve => {
            let code = serve(config).await;
            telemetry.shutdown().await;
            return code;
        }
        Command::Backup(target) => commands::backup(&config, &target),
        Command::Restore(source) => commands::restore(&config, &source).await,
        Command::Seed { scale, customers } => commands::seed(&config, scale, customers).await,
    };
    telemetry.shutdown().await;
    match outcome {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e @ CommandError::Usage(_)) => {
            eprintln!("nexus-toolkit: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("nexus-toolkit: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> ExitCode {
    let leptos = match get_configuration(None) {
        Ok(conf) => conf.leptos_options,
        Err(e) => {
            tracing::error!(error = %e, "invalid LEPTOS_* configuration");
            return ExitCode::from(2);
        }
    };
    let addr = leptos.site_addr;
    let state = match AppState::build(config, leptos).await {
        Ok(state) => state,
        Err(e) => {
            tracing::error!(error = %e, "start-up failed");
            return ExitCode::FAILURE;
        }
    };

    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(%addr, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(url = %format!("http://{addr}"), "NexusAI Toolkit listening");
    let app = http::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app).with_graceful_shutdown(http::shutdown_signal()).await;
    state.shutdown().await;
    if let Err(e) = served {
        tracing::error!(error = %e, "server error");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
