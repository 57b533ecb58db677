//! `--metadata-query` parsing and evaluation never panic or overflow the stack, on any query
//! and any metadata.
#![no_main]

use connector_build::select::QueryData;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line is the query; the rest, when it is JSON, is the connector's `data`.
    let (source, rest) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(query) = connector_build::select::Query::parse(source) else {
        return;
    };
    let sample = serde_json::json!({
        "name": "Source S3",
        "supportLevel": "certified",
        "dockerImageTag": "1.2.0",
        "tags": ["language:python", "cdk:python"],
        "ab_internal": {"ql": 300, "sl": 200},
        "connectorBuildOptions": {"baseImage": "docker.io/airbyte/python-connector-base:1.0.0@sha256:aa"},
        "ratio": 0.5,
        "enabled": true,
        "nothing": null
    });
    let _ = query.matches(&QueryData::from(&sample));
    if let Ok(data) = serde_json::from_str::<serde_json::Value>(rest) {
        let _ = query.matches(&QueryData::from(&data));
    }
});
