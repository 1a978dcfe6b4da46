//! The HTTP floor: a bare actix-web JSON handler with the gateway's worker count, in a process
//! of its own like the gateway, so `/healthz` is compared with the least actix can do.

use actix_web::{App, HttpResponse, HttpServer, web};

pub fn serve(listen: &str) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async {
        HttpServer::new(|| {
            App::new().route(
                "/healthz",
                web::get()
                    .to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "ok"})) }),
            )
        })
        .bind(listen)?
        .run()
        .await
    })?;
    Ok(())
}
