//! What the gRPC and HTTP receivers share: where requests go ([`Forward`]) and the
//! `host.name` they add to each resource ([`enrich`]).

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::export::OtlpSink;

/// What the receivers share: where requests go and what to add to them.
#[derive(Clone)]
pub(crate) struct Forward {
    pub(crate) sink: OtlpSink,
    pub(crate) host_name: String,
}

/// Adds `host.name` to a resource that has none.
pub(crate) fn enrich(resource: &mut Option<Resource>, host_name: &str) {
    let r = resource.get_or_insert_with(Resource::default);
    if r.attributes.iter().any(|kv| kv.key == "host.name") {
        return;
    }
    r.attributes.push(KeyValue {
        key: "host.name".to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(host_name.to_string())),
        }),
        ..Default::default()
    });
}
