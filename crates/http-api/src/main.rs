use clap::Parser;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    http_api::init_tracing();
    http_api::cli::main(http_api::cli::Cli::parse()).await
}
