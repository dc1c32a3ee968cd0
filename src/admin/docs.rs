//! The OpenAPI 3.1 document, generated from the route handlers' annotations, and the two
//! viewers of it, served from the binary: Swagger UI at `/docs`, ReDoc at `/redoc`.

use axum::{
    Router,
    http::header,
    response::{Html, IntoResponse},
    routing::get,
};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{Http, HttpAuthScheme, SecurityScheme},
};
use utoipa_swagger_ui::{Config, SwaggerUi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "MCPS.ONE",
        description = "The REST side surface of the MCPS.ONE gateway. MCP clients use `/mcp` (streamable HTTP) or `/ws`; this API is for people and scripts. Every route needs `Authorization: Bearer <token>` (from `POST /api/v1/auth/login`, or an API key) except health and login.",
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Logging in and API keys"),
        (name = "system", description = "Health, status and uploads"),
        (name = "services", description = "Upstream MCP servers"),
        (name = "tools", description = "The aggregated tool catalog"),
        (name = "mcp", description = "One-shot JSON-RPC"),
        (name = "calls", description = "Call history"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document's fixed parts; the routes add their paths.
pub(super) fn base() -> utoipa::openapi::OpenApi {
    let mut openapi = ApiDoc::openapi();
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    openapi
}

const REDOC_JS: &[u8] = include_bytes!("assets/redoc.standalone.js");

const REDOC_PAGE: &str = r#"<!DOCTYPE html>
<html>
  <head>
    <title>MCPS.ONE API</title>
    <meta charset="utf-8"/>
    <meta name="viewport" content="width=device-width, initial-scale=1">
  </head>
  <body>
    <redoc spec-url="/openapi.json"></redoc>
    <script src="/redoc/redoc.standalone.js"></script>
  </body>
</html>
"#;

/// `/openapi.json`, `/docs` and `/redoc`.
pub(super) fn viewers(openapi: utoipa::openapi::OpenApi) -> Router {
    Router::new()
        .merge(
            SwaggerUi::new("/docs")
                .url("/openapi.json", openapi)
                // Swagger UI would otherwise send the document's URL to swagger.io's validator.
                .config(Config::default().validator_url("none")),
        )
        .route("/redoc", get(|| async { Html(REDOC_PAGE) }))
        .route(
            "/redoc/redoc.standalone.js",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=86400"),
                    ],
                    REDOC_JS,
                )
                    .into_response()
            }),
        )
}
