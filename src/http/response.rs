//! The HTTP form of a GraphQL response (GraphQL over HTTP): the media type the client accepts,
//! and with `application/graphql-response+json` a 400 for a request that never executed.

use async_graphql::BatchResponse;
use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};

/// The GraphQL-over-HTTP media type: its status codes say whether the request executed.
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const APPLICATION_JSON: &str = "application/json";

/// Which of the two response media types the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaType {
    /// `application/graphql-response+json`.
    GraphqlResponse,
    /// `application/json` (legacy clients: always 200 for a well-formed request).
    Json,
}

impl MediaType {
    fn as_str(self) -> &'static str {
        match self {
            MediaType::GraphqlResponse => GRAPHQL_RESPONSE_JSON,
            MediaType::Json => APPLICATION_JSON,
        }
    }
}

/// The media type for an `Accept` header: the acceptable one with the higher `q`, the GraphQL one
/// on a tie or a wildcard. Without an `Accept` header the spec says to answer as to a legacy
/// client (`application/json`), which is what clients written before the spec expect.
pub(crate) fn negotiate(headers: &HeaderMap) -> MediaType {
    let accept: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if accept.is_empty() {
        return MediaType::Json;
    }
    let (mut graphql, mut json, mut wildcard) = (None::<f32>, None::<f32>, None::<f32>);
    for range in accept.iter().flat_map(|v| v.split(',')) {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let slot = match media.as_str() {
            GRAPHQL_RESPONSE_JSON => &mut graphql,
            APPLICATION_JSON => &mut json,
            "*/*" | "application/*" => &mut wildcard,
            _ => continue,
        };
        *slot = Some(slot.map_or(q, |old: f32| old.max(q)));
    }
    let graphql = graphql.or(wildcard).unwrap_or(0.0);
    let json = json.unwrap_or(0.0);
    if json > graphql {
        MediaType::Json
    } else if graphql > 0.0 {
        MediaType::GraphqlResponse
    } else {
        // Nothing we produce was asked for: JSON is still the most useful answer.
        MediaType::Json
    }
}

/// Whether a response never executed: no data and only errors without a path (parse,
/// validation and limit errors). A `null` `data` from a failed non-null field has paths.
fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// The response to a GraphQL request, in the media type `request_headers` accept.
pub(crate) fn graphql_response(request_headers: &HeaderMap, batch: BatchResponse) -> Response {
    let media = negotiate(request_headers);
    let status = match (&batch, media) {
        (BatchResponse::Single(one), MediaType::GraphqlResponse) if is_request_error(one) => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    };
    let body = match serde_json::to_vec(&batch) {
        Ok(body) => body,
        Err(err) => {
            tracing::error!(error = %err, "a GraphQL response could not be serialised");
            br#"{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}"#
                .to_vec()
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.as_str()),
    );
    if batch.is_ok()
        && let Some(value) = batch.cache_control().value()
        && let Ok(value) = HeaderValue::from_str(&value)
    {
        headers.insert(header::CACHE_CONTROL, value);
    }
    headers.extend(batch.http_headers());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, value.parse().unwrap());
        headers
    }

    #[test]
    fn accept_picks_the_media_type() {
        assert_eq!(negotiate(&HeaderMap::new()), MediaType::Json);
        assert_eq!(negotiate(&accept("application/json")), MediaType::Json);
        assert_eq!(
            negotiate(&accept("application/graphql-response+json")),
            MediaType::GraphqlResponse
        );
        assert_eq!(
            negotiate(&accept(
                "application/graphql-response+json, application/json;q=0.9"
            )),
            MediaType::GraphqlResponse
        );
        assert_eq!(
            negotiate(&accept(
                "application/graphql-response+json;q=0.5, application/json"
            )),
            MediaType::Json
        );
        assert_eq!(negotiate(&accept("*/*")), MediaType::GraphqlResponse);
        assert_eq!(
            negotiate(&accept("application/json, */*;q=0.1")),
            MediaType::Json
        );
        assert_eq!(negotiate(&accept("text/plain")), MediaType::Json);
    }
}
