//! Answers and errors as HTTP responses.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use vouch_api::{ErrorBody, ErrorDetail};
use vouch_service::NodeError;

/// A [`NodeError`] as an HTTP response: its status, and a body with its
/// stable code and its message.
#[derive(Debug)]
pub struct ApiError(pub NodeError);

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> ApiError {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let ApiError(e) = self;
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(code = e.code(), error = %e, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: e.code().into(),
                message: e.to_string(),
            },
        };
        (status, axum::Json(body)).into_response()
    }
}

/// `value` as a JSON response with `status`; a value that cannot be
/// encoded is a 500 in the usual error body.
pub(crate) fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => {
            ApiError(NodeError::Internal(format!("encoding the response: {e}"))).into_response()
        }
    }
}
