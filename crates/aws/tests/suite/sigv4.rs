//! SigV4 against AWS's published test suite (aws-sig-v4-test-suite): credentials
//! AKIDEXAMPLE, region us-east-1, service `service`, time 20150830T123600Z. The expected
//! Authorization headers are the suite's own.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use oneflow_aws::{Credentials, sign};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SCOPE: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";
const STS_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

fn suite_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
}

struct Vector {
    name: &'static str,
    method: Method,
    url: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    token: Option<&'static str>,
    signed_headers: &'static str,
    signature: &'static str,
}

fn vectors() -> Vec<Vector> {
    vec![
        Vector {
            name: "get-vanilla",
            method: Method::GET,
            url: "https://example.amazonaws.com/",
            headers: &[("host", "example.amazonaws.com")],
            body: "",
            token: None,
            signed_headers: "host;x-amz-date",
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        },
        Vector {
            name: "post-vanilla",
            method: Method::POST,
            url: "https://example.amazonaws.com/",
            headers: &[("host", "example.amazonaws.com")],
            body: "",
            token: None,
            signed_headers: "host;x-amz-date",
            signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        },
        Vector {
            name: "post-x-www-form-urlencoded",
            method: Method::POST,
            url: "https://example.amazonaws.com/",
            headers: &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("host", "example.amazonaws.com"),
            ],
            body: "Param1=value1",
            token: None,
            signed_headers: "content-type;host;x-amz-date",
            signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        },
        Vector {
            name: "get-vanilla-query-order-key-case",
            method: Method::GET,
            url: "https://example.amazonaws.com/?Param2=value2&Param1=value1",
            headers: &[("host", "example.amazonaws.com")],
            body: "",
            token: None,
            signed_headers: "host;x-amz-date",
            signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        },
        Vector {
            name: "post-vanilla-query",
            method: Method::POST,
            url: "https://example.amazonaws.com/?Param1=value1",
            headers: &[],
            body: "",
            token: None,
            signed_headers: "host;x-amz-date",
            signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
        },
        Vector {
            name: "get-header-value-trim",
            method: Method::GET,
            url: "https://example.amazonaws.com/",
            headers: &[
                ("host", "example.amazonaws.com"),
                ("my-header1", " value1"),
                ("my-header2", " \"a   b   c\""),
            ],
            body: "",
            token: None,
            signed_headers: "host;my-header1;my-header2;x-amz-date",
            signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        },
        Vector {
            name: "post-sts-header-before",
            method: Method::POST,
            url: "https://example.amazonaws.com/",
            headers: &[("host", "example.amazonaws.com")],
            body: "",
            token: Some(STS_TOKEN),
            signed_headers: "host;x-amz-date;x-amz-security-token",
            signature: "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
        },
    ]
}

#[test]
fn authorization_matches_the_published_vectors() {
    for v in vectors() {
        let creds = Credentials::new("AKIDEXAMPLE", SECRET, v.token.map(str::to_owned));
        let mut headers = HeaderMap::new();
        for (name, value) in v.headers {
            headers.append(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        let signed = sign(
            &v.method,
            v.url,
            &headers,
            v.body.as_bytes(),
            "service",
            "us-east-1",
            &creds,
            suite_time(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        let expected = format!("{SCOPE}, SignedHeaders={}, Signature={}", v.signed_headers, v.signature);
        assert_eq!(signed["authorization"], expected.as_str(), "{}", v.name);
        assert_eq!(signed["x-amz-date"], "20150830T123600Z", "{}", v.name);
        assert_eq!(
            signed.get("x-amz-security-token").map(|t| t.to_str().unwrap()),
            v.token,
            "{}",
            v.name
        );
        assert!(signed.get("x-amz-content-sha256").is_none(), "{}", v.name);
    }
}

#[test]
fn a_changed_body_or_clock_changes_the_signature() {
    let creds = Credentials::new("AKIDEXAMPLE", SECRET, None);
    let url = "https://example.amazonaws.com/";
    let at = |body: &[u8], time| {
        sign(
            &Method::POST,
            url,
            &HeaderMap::new(),
            body,
            "service",
            "us-east-1",
            &creds,
            time,
        )
        .unwrap()["authorization"]
            .clone()
    };
    let base = at(b"Param1=value1", suite_time());
    assert_ne!(base, at(b"Param1=value2", suite_time()));
    assert_ne!(base, at(b"Param1=value1", suite_time() + Duration::from_secs(1)));
}
