//! GraphiQL served whole by this server: no CDN, no inline script.
//!
//! async-graphql's built-in GraphiQL page loads React and GraphiQL from a
//! CDN. This page instead uses copies of the UMD builds vendored in
//! `assets/graphiql/` (see its `README.md` for versions and how to refresh
//! them) and embedded in the binary, so it works offline, air-gapped and
//! under a strict [`CONTENT_SECURITY_POLICY`]:
//!
//! * GraphiQL 3.9.0 (`graphiql-3.9.0.min.js`, `graphiql-3.9.0.min.css`),
//! * React 18.3.1 and ReactDOM 18.3.1 (UMD production builds),
//! * graphql-ws 5.16.2 (UMD) for subscriptions over WebSocket,
//! * the GraphiQL Explorer plugin 3.2.6 (UMD; builds queries by clicking),
//! * uPlot 1.6.32 (IIFE; the Chart view's canvas charts),
//! * our own `workbench.js` (the analyst's workbench: sign-in panel, example
//!   tabs, Chart view), `boot.js` (mounts GraphiQL; endpoints and examples
//!   come from `data-` attributes, so the HTML carries no inline script) and
//!   `page.css`.
//!
//! Vendored files carry their package version in their name; our own files
//! are served under a name carrying a hash of their content. Every asset
//! URL therefore names immutable content and is cached for a year, while
//! the page itself is revalidated on every load.

use std::sync::LazyLock;

use axum::{
    Router,
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use sha2::{Digest, Sha256};

/// URL prefix under which the page's scripts and stylesheets are served
/// (see [`routes`]).
pub const ASSET_PREFIX: &str = "/graphql/assets/";

/// Content-Security-Policy sent with the GraphiQL page.
///
/// * Scripts only from this origin: the page has no inline script and
///   GraphiQL 3 evaluates no code from strings.
/// * `style-src` also allows `'unsafe-inline'`: GraphiQL's dialogs (through
///   react-remove-scroll) insert `<style>` elements at run time, and
///   CodeMirror 5's search / jump-to-line dialogs are built from HTML with
///   `style` attributes. Both would be blocked (with console violations)
///   under `style-src 'self'`. Inline styles cannot run code, and whatever
///   they could load is still limited by `img-src` and `font-src`.
/// * Images and fonts from this origin or `data:` URLs (the GraphiQL
///   stylesheet embeds its fonts and icons as `data:` URLs).
/// * `connect-src 'self'` covers both the HTTP endpoint and the WebSocket
///   endpoint on the same host (CSP 3 lets `'self'` match `ws:`/`wss:` on the
///   page's host and port). Endpoints on another origin are not allowed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; \
     script-src 'self'; \
     style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; \
     font-src 'self' data:; \
     connect-src 'self'; \
     base-uri 'none'; \
     form-action 'none'; \
     frame-ancestors 'none'";

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// One embedded file and the name it is served under.
struct Asset {
    name: String,
    content_type: &'static str,
    bytes: &'static [u8],
}

impl Asset {
    /// A vendored file whose name already carries its package version.
    fn versioned(name: &str, content_type: &'static str, bytes: &'static [u8]) -> Self {
        Self {
            name: name.to_owned(),
            content_type,
            bytes,
        }
    }

    /// One of our own files, served as `<stem>-<hash>.<ext>`.
    fn fingerprinted(
        stem: &str,
        ext: &str,
        content_type: &'static str,
        bytes: &'static [u8],
    ) -> Self {
        let digest = Sha256::digest(bytes);
        let hash = hex::encode(&digest[..8]);
        Self {
            name: format!("{stem}-{hash}.{ext}"),
            content_type,
            bytes,
        }
    }
}

/// The page's assets, in the order the page loads them.
struct Assets {
    graphiql_css: Asset,
    explorer_css: Asset,
    uplot_css: Asset,
    page_css: Asset,
    react: Asset,
    react_dom: Asset,
    graphql_ws: Asset,
    graphiql_js: Asset,
    explorer_js: Asset,
    uplot_js: Asset,
    workbench: Asset,
    boot: Asset,
}

impl Assets {
    fn all(&self) -> [&Asset; 12] {
        [
            &self.graphiql_css,
            &self.explorer_css,
            &self.uplot_css,
            &self.page_css,
            &self.react,
            &self.react_dom,
            &self.graphql_ws,
            &self.graphiql_js,
            &self.explorer_js,
            &self.uplot_js,
            &self.workbench,
            &self.boot,
        ]
    }

    fn find(&self, name: &str) -> Option<&Asset> {
        self.all().into_iter().find(|asset| asset.name == name)
    }
}

static ASSETS: LazyLock<Assets> = LazyLock::new(|| Assets {
    graphiql_css: Asset::versioned(
        "graphiql-3.9.0.min.css",
        CSS,
        include_bytes!("../../assets/graphiql/graphiql-3.9.0.min.css"),
    ),
    explorer_css: Asset::versioned(
        "graphiql-plugin-explorer-3.2.6.css",
        CSS,
        include_bytes!("../../assets/graphiql/graphiql-plugin-explorer-3.2.6.css"),
    ),
    uplot_css: Asset::versioned(
        "uPlot-1.6.32.min.css",
        CSS,
        include_bytes!("../../assets/graphiql/uPlot-1.6.32.min.css"),
    ),
    page_css: Asset::fingerprinted(
        "page",
        "css",
        CSS,
        include_bytes!("../../assets/graphiql/page.css"),
    ),
    react: Asset::versioned(
        "react-18.3.1.production.min.js",
        JAVASCRIPT,
        include_bytes!("../../assets/graphiql/react-18.3.1.production.min.js"),
    ),
    react_dom: Asset::versioned(
        "react-dom-18.3.1.production.min.js",
        JAVASCRIPT,
        include_bytes!("../../assets/graphiql/react-dom-18.3.1.production.min.js"),
    ),
    graphql_ws: Asset::versioned(
        "graphql-ws-5.16.2.min.js",
        JAVASCRIPT,
        include_bytes!("../../assets/graphiql/graphql-ws-5.16.2.min.js"),
    ),
    graphiql_js: Asset::versioned(
        "graphiql-3.9.0.min.js",
        JAVASCRIPT,
        include_bytes!("../../assets/graphiql/graphiql-3.9.0.min.js"),
    ),
    explorer_js: Asset::versioned(
        "graphiql-plugin-explorer-3.2.6.umd.js",
        JAVASCRIPT,
        include_bytes!("../../assets/graphiql/graphiql-plugin-explorer-3.2.6.umd.js"),
    ),
    uplot_js: Asset::versioned(
        "uPlot-1.6.32.iife.min.js",
        JAVASCRIPT,
        include_bytes!("../../assets/graphiql/uPlot-1.6.32.iife.min.js"),
    ),
    workbench: Asset::fingerprinted(
        "workbench",
        "js",
        JAVASCRIPT,
        include_bytes!("../../assets/graphiql/workbench.js"),
    ),
    boot: Asset::fingerprinted(
        "boot",
        "js",
        JAVASCRIPT,
        include_bytes!("../../assets/graphiql/boot.js"),
    ),
});

/// The README's analyst queries, opened as tabs by the page (`data-examples`): each has a
/// `query` and a `fill` naming, per variable, the kind of scenario whose id `workbench.js`
/// fills in once the user has signed in (looked up with the user's own token, so the page never
/// shows an id its user cannot read).
pub const EXAMPLES_JSON: &str = include_str!("../../assets/graphiql/examples.json");

/// Escapes text for use inside a double-quoted HTML attribute value.
fn escape_attribute(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The GraphiQL page for a GraphQL HTTP `endpoint` and a WebSocket
/// `subscription_endpoint` (paths such as `/graphql` and `/graphql/ws`,
/// resolved against the page's URL; the WebSocket URL gets `ws:`/`wss:` to
/// match `http:`/`https:`).
///
/// The page has no inline script or style: it loads its assets from
/// [`ASSET_PREFIX`] (served by [`routes`]), and `boot.js` reads both
/// endpoints from the `data-` attributes of `#graphiql`, where they are
/// HTML-escaped, with the example tabs ([`EXAMPLES_JSON`]) in `data-examples`. The headers pane is enabled, kept in localStorage only when the user turns on
/// "Persist headers" in GraphiQL's settings; its content (for
/// example `{"Authorization": "Bearer <token>"}`) is sent as HTTP headers
/// and, verbatim, as the `connection_init` payload of subscriptions.
pub fn graphiql_html(endpoint: &str, subscription_endpoint: &str) -> String {
    let assets = &*ASSETS;
    let url = |asset: &Asset| escape_attribute(&format!("{ASSET_PREFIX}{}", asset.name));
    let endpoint = escape_attribute(endpoint);
    let subscription_endpoint = escape_attribute(subscription_endpoint);
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>FinVision API · GraphiQL</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{graphiql_css}">
<link rel="stylesheet" href="{explorer_css}">
<link rel="stylesheet" href="{uplot_css}">
<link rel="stylesheet" href="{page_css}">
</head>
<body>
<div id="graphiql" data-endpoint="{endpoint}" data-subscription-endpoint="{subscription_endpoint}" data-examples="{examples}">Loading GraphiQL…</div>
<noscript>GraphiQL needs JavaScript.</noscript>
<script src="{react}"></script>
<script src="{react_dom}"></script>
<script src="{graphql_ws}"></script>
<script src="{graphiql_js}"></script>
<script src="{explorer_js}"></script>
<script src="{uplot_js}"></script>
<script src="{workbench}"></script>
<script src="{boot}"></script>
</body>
</html>
"#,
        graphiql_css = url(&assets.graphiql_css),
        explorer_css = url(&assets.explorer_css),
        uplot_css = url(&assets.uplot_css),
        page_css = url(&assets.page_css),
        react = url(&assets.react),
        react_dom = url(&assets.react_dom),
        graphql_ws = url(&assets.graphql_ws),
        graphiql_js = url(&assets.graphiql_js),
        explorer_js = url(&assets.explorer_js),
        uplot_js = url(&assets.uplot_js),
        workbench = url(&assets.workbench),
        boot = url(&assets.boot),
        examples = escape_attribute(EXAMPLES_JSON),
    )
}

/// The GraphiQL page ([`graphiql_html`]) as a response: `text/html`, with
/// [`CONTENT_SECURITY_POLICY`], `X-Content-Type-Options: nosniff`,
/// `Referrer-Policy: no-referrer` and `Cache-Control: no-cache` (the page
/// names the current asset versions, so it is always revalidated).
pub fn graphiql_page(endpoint: &str, subscription_endpoint: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        graphiql_html(endpoint, subscription_endpoint),
    )
        .into_response()
}

/// Serves one of the page's embedded assets by file name, with its content
/// type and a one-year immutable `Cache-Control` (asset names carry a
/// version or content hash); `404 Not Found` for any other name.
pub async fn graphiql_asset(Path(name): Path<String>) -> Response {
    match ASSETS.find(&name) {
        Some(asset) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(asset.content_type),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
            ],
            asset.bytes,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            "not found",
        )
            .into_response(),
    }
}

/// Routes `GET /graphql/assets/{name}` ([`ASSET_PREFIX`]) to
/// [`graphiql_asset`]. Merge it into the app's router next to the route
/// that serves [`graphiql_page`].
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route(&format!("{ASSET_PREFIX}{{name}}"), get(graphiql_asset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    const ENDPOINT: &str = "/graphql";
    const WS_ENDPOINT: &str = "/graphql/ws";

    fn app() -> Router {
        routes().route(
            "/graphql",
            get(|| async { graphiql_page(ENDPOINT, WS_ENDPOINT) }),
        )
    }

    async fn get_path(app: Router, path: &str) -> Response {
        app.oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn body_bytes(response: Response) -> Vec<u8> {
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    /// Values of `attr="..."` on every tag `<tag ...>` in `html`.
    fn attribute_values(html: &str, tag: &str, attr: &str) -> Vec<String> {
        let open = format!("<{tag} ");
        let key = format!(" {attr}=\"");
        html.match_indices(&open)
            .map(|(start, _)| {
                let tag_text = &html[start..start + html[start..].find('>').unwrap()];
                let value_start = tag_text.find(&key).expect("attribute present") + key.len();
                let value_len = tag_text[value_start..].find('"').unwrap();
                tag_text[value_start..value_start + value_len].to_owned()
            })
            .collect()
    }

    fn header_str(response: &Response, name: header::HeaderName) -> &str {
        response
            .headers()
            .get(&name)
            .unwrap_or_else(|| panic!("header {name} missing"))
            .to_str()
            .unwrap()
    }

    #[test]
    fn page_has_no_remote_urls_and_no_inline_script() {
        let html = graphiql_html(ENDPOINT, WS_ENDPOINT);
        for value in attribute_values(&html, "script", "src")
            .into_iter()
            .chain(attribute_values(&html, "link", "href"))
        {
            // The empty `data:` favicon only stops a request for /favicon.ico.
            assert!(
                value.starts_with(ASSET_PREFIX) || value == "data:,",
                "asset URL {value} is not served by us"
            );
        }
        assert!(!html.contains("http://"), "{html}");
        assert!(!html.contains("https://"), "{html}");
        assert!(!html.contains("//unpkg") && !html.contains("jsdelivr"));
        // Every script element is empty: `<script src="..."></script>`.
        let scripts = html.matches("<script").count();
        assert_eq!(scripts, 8);
        assert_eq!(html.matches("\"></script>").count(), scripts);
        assert!(!html.contains("<style"), "no inline style element");
        assert!(!html.contains(" style="), "no inline style attribute");
    }

    #[tokio::test]
    async fn page_response_has_security_headers() {
        let response = get_path(app(), "/graphql").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header_str(&response, header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        let csp = header_str(&response, header::CONTENT_SECURITY_POLICY);
        assert_eq!(csp, CONTENT_SECURITY_POLICY);
        assert!(csp.contains("default-src 'none'"));
        assert!(csp.contains("script-src 'self';"));
        assert!(csp.contains("frame-ancestors 'none'"));
        for host in [
            "unpkg", "jsdelivr", "cdnjs", "esm.sh", "http:", "https:", "*",
        ] {
            assert!(!csp.contains(host), "CSP allows {host}: {csp}");
        }
        assert_eq!(
            header_str(&response, header::X_CONTENT_TYPE_OPTIONS),
            "nosniff"
        );
        assert_eq!(
            header_str(&response, header::REFERRER_POLICY),
            "no-referrer"
        );
        let body = String::from_utf8(body_bytes(response).await).unwrap();
        assert!(body.contains("data-endpoint=\"/graphql\""));
        assert!(body.contains("data-subscription-endpoint=\"/graphql/ws\""));
    }

    #[tokio::test]
    async fn every_page_asset_is_served_with_its_content_type() {
        let html = graphiql_html(ENDPOINT, WS_ENDPOINT);
        let scripts = attribute_values(&html, "script", "src");
        let styles: Vec<String> = attribute_values(&html, "link", "href")
            .into_iter()
            .filter(|href| href != "data:,")
            .collect();
        assert_eq!(scripts.len(), 8);
        assert_eq!(styles.len(), 4);
        for (urls, content_type) in [(scripts, JAVASCRIPT), (styles, CSS)] {
            for url in urls {
                let response = get_path(app(), &url).await;
                assert_eq!(response.status(), StatusCode::OK, "{url}");
                assert_eq!(header_str(&response, header::CONTENT_TYPE), content_type);
                assert_eq!(header_str(&response, header::CACHE_CONTROL), IMMUTABLE);
                assert_eq!(
                    header_str(&response, header::X_CONTENT_TYPE_OPTIONS),
                    "nosniff"
                );
                let body = body_bytes(response).await;
                assert!(body.len() > 100, "{url} is too small");
                let name = url.strip_prefix(ASSET_PREFIX).unwrap();
                assert_eq!(body, ASSETS.find(name).unwrap().bytes);
            }
        }
    }

    #[test]
    fn own_assets_are_fingerprinted() {
        let boot = &ASSETS.boot.name;
        assert!(boot.starts_with("boot-") && boot.ends_with(".js"), "{boot}");
        assert_eq!(boot.len(), "boot-".len() + 16 + ".js".len());
        let workbench = &ASSETS.workbench.name;
        assert!(workbench.starts_with("workbench-") && workbench.ends_with(".js"));
        let page = &ASSETS.page_css.name;
        assert!(
            page.starts_with("page-") && page.ends_with(".css"),
            "{page}"
        );
    }

    #[test]
    fn endpoints_are_html_escaped() {
        let html = graphiql_html("/q\"<>&'x", "/ws\"><script>alert(1)</script>");
        assert!(html.contains("data-endpoint=\"/q&quot;&lt;&gt;&amp;&#39;x\""));
        assert!(html.contains(
            "data-subscription-endpoint=\"/ws&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""
        ));
        assert_eq!(html.matches("<script").count(), 8);
    }

    /// The example tabs are the README's analyst queries, word for word, and each variable they
    /// fill is one the query declares.
    #[test]
    fn examples_are_the_readme_queries() {
        let readme = include_str!("../../README.md");
        let examples: Vec<serde_json::Value> = serde_json::from_str(EXAMPLES_JSON).unwrap();
        assert_eq!(examples.len(), 3);
        for example in &examples {
            let query = example["query"].as_str().unwrap();
            assert!(readme.contains(query), "README lacks the example:\n{query}");
            for (variable, kind) in example["fill"].as_object().unwrap() {
                assert!(query.contains(&format!("${variable}: ID!")), "{variable}");
                assert!(["BASE", "UPSIDE", "DOWNSIDE", "CUSTOM"].contains(&kind.as_str().unwrap()));
            }
        }
        let html = graphiql_html(ENDPOINT, WS_ENDPOINT);
        assert!(html.contains(&format!(
            "data-examples=\"{}\"",
            escape_attribute(EXAMPLES_JSON)
        )));
    }

    #[tokio::test]
    async fn unknown_assets_are_not_found() {
        for path in [
            "/graphql/assets/nope.js",
            "/graphql/assets/boot.js",
            "/graphql/assets/..%2FCargo.toml",
            "/graphql/assets/graphiql-3.9.0.min.js.map",
        ] {
            let response = get_path(app(), path).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        }
    }
}
