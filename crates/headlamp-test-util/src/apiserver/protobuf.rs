//! Just enough of Kubernetes' protobuf encoding to read the self-review
//! requests client-go's typed clients send (`kubectl auth whoami`,
//! `kubectl auth can-i`): the `k8s\0` + `runtime.Unknown` envelope
//! (<https://kubernetes.io/docs/reference/using-api/api-concepts/#protobuf-encoding>)
//! and the string fields of the review specs, converted to the JSON the
//! handlers read. Field numbers are those of `k8s.io/api/authorization/v1`'s
//! `generated.proto`.

use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\0";

/// One protobuf field: (number, payload) for length-delimited fields; other
/// wire types are skipped.
fn fields(mut input: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (key, rest) = varint(input)?;
        input = rest;
        match key & 7 {
            0 => input = varint(input)?.1,
            1 => input = input.get(8..)?,
            5 => input = input.get(4..)?,
            2 => {
                let (len, rest) = varint(input)?;
                let len = usize::try_from(len).ok()?;
                out.push((key >> 3, rest.get(..len)?));
                input = rest.get(len..)?;
            }
            _ => return None,
        }
    }
    Some(out)
}

fn varint(input: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, byte) in input.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, &input[i + 1..]));
        }
    }
    None
}

fn field(input: &[u8], number: u64) -> Option<&[u8]> {
    fields(input)?
        .into_iter()
        .find(|(n, _)| *n == number)
        .map(|(_, v)| v)
}

/// Maps string fields of a message to JSON keys.
fn strings(input: &[u8], names: &[(u64, &str)]) -> Option<Value> {
    let mut map = Map::new();
    for (number, value) in fields(input)? {
        if let Some((_, name)) = names.iter().find(|(n, _)| *n == number) {
            map.insert((*name).to_owned(), json!(String::from_utf8_lossy(value)));
        }
    }
    Some(Value::Object(map))
}

/// Decodes a SelfSubjectAccessReview or SelfSubjectRulesReview body into
/// the JSON shape of the same object. `None` when the bytes are not such a
/// message.
pub(crate) fn decode_review(body: &[u8]) -> Option<Value> {
    let unknown = body.strip_prefix(MAGIC)?;
    let type_meta = field(unknown, 1)?;
    let kind = String::from_utf8_lossy(field(type_meta, 2)?).into_owned();
    let raw = field(unknown, 2)?;
    let spec_bytes = field(raw, 2).unwrap_or_default();
    let spec = match kind.as_str() {
        "SelfSubjectAccessReview" => {
            let mut spec = Map::new();
            if let Some(r) = field(spec_bytes, 1) {
                spec.insert(
                    "resourceAttributes".into(),
                    strings(
                        r,
                        &[
                            (1, "namespace"),
                            (2, "verb"),
                            (3, "group"),
                            (4, "version"),
                            (5, "resource"),
                            (6, "subresource"),
                            (7, "name"),
                        ],
                    )?,
                );
            }
            if let Some(n) = field(spec_bytes, 2) {
                spec.insert(
                    "nonResourceAttributes".into(),
                    strings(n, &[(1, "path"), (2, "verb")])?,
                );
            }
            Value::Object(spec)
        }
        "SelfSubjectRulesReview" => strings(spec_bytes, &[(1, "namespace")])?,
        "SelfSubjectReview" => json!({}),
        _ => return None,
    };
    Some(json!({ "kind": kind, "spec": spec }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(fields: &[(u64, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (number, value) in fields {
            out.push(u8::try_from((number << 3) | 2).unwrap());
            out.push(u8::try_from(value.len()).unwrap());
            out.extend_from_slice(value);
        }
        out
    }

    #[test]
    fn decodes_an_access_review() {
        let attrs = message(&[(1, b"default"), (2, b"list"), (5, b"pods")]);
        let spec = message(&[(1, &attrs)]);
        let raw = message(&[(1, b""), (2, &spec)]);
        let type_meta = message(&[
            (1, b"authorization.k8s.io/v1"),
            (2, b"SelfSubjectAccessReview"),
        ]);
        let mut body = MAGIC.to_vec();
        body.extend(message(&[(1, &type_meta), (2, &raw)]));
        let review = decode_review(&body).unwrap();
        assert_eq!(review["kind"], "SelfSubjectAccessReview");
        assert_eq!(
            review["spec"]["resourceAttributes"],
            json!({"namespace": "default", "verb": "list", "resource": "pods"})
        );
        assert_eq!(decode_review(b"k8s\0\x0a"), None);
        assert_eq!(decode_review(b"{}"), None);
    }
}
