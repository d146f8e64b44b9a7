//! Machine-readable error details on gRPC statuses: services attach an
//! [`ErrorInfo`](crate::common::v1::ErrorInfo) so the gateway can produce the
//! exact OpenAI error code and `Retry-After` without parsing messages.
use prost::Message as _;

use crate::common::v1::ErrorInfo;

/// A status carrying `info` in its binary details.
pub fn status_with_info(code: tonic::Code, message: impl Into<String>, info: ErrorInfo) -> tonic::Status {
    tonic::Status::with_details(code, message, info.encode_to_vec().into())
}

/// The [`ErrorInfo`] attached by [`status_with_info`], if any.
pub fn error_info(status: &tonic::Status) -> Option<ErrorInfo> {
    if status.details().is_empty() {
        return None;
    }
    ErrorInfo::decode(status.details()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_info_round_trips_through_status_details() {
        let info = ErrorInfo {
            code: "insufficient_credits".into(),
            param: "model".into(),
            retry_after_millis: 1500,
            upstream_status: 0,
        };
        let status = status_with_info(tonic::Code::FailedPrecondition, "no credits", info.clone());
        assert_eq!(error_info(&status), Some(info));
        assert_eq!(error_info(&tonic::Status::internal("x")), None);
    }
}
