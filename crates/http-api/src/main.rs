use clap::Parser;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let cli = http_api::cli::Cli::parse();
    // Logs and traces as configured; a configuration that does not load is reported by the
    // command itself (as JSON with `--json`), with logs as text meanwhile.
    let config = http_api::config::Config::load(cli.config.as_deref()).unwrap_or_default();
    let replica = http_api::telemetry::replica_name(&config);
    let _telemetry = match http_api::telemetry::init(config.log_format, &replica) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    http_api::cli::main(cli).await
}
