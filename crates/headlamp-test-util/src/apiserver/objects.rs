//! The test cluster's fixed objects (namespaces and pods), their list,
//! Table and watch-event forms, and the discovery documents kubectl needs.
//! Shapes follow the Kubernetes API reference
//! (<https://kubernetes.io/docs/reference/kubernetes-api/>) and what
//! kube-apiserver actually serves (e.g. list items carry no
//! `kind`/`apiVersion`).

use serde_json::{Value, json};

/// Namespaces of the test cluster.
pub const NAMESPACES: &[&str] = &[
    "default",
    "headlamp",
    "kube-node-lease",
    "kube-public",
    "kube-system",
];

/// Pods of the test cluster: (namespace, name, containers).
pub const PODS: &[(&str, &str, &[&str])] = &[
    ("default", "echo", &["echo"]),
    ("default", "web-0", &["nginx", "log-shipper"]),
    ("headlamp", "headlamp-0", &["headlamp"]),
    ("kube-system", "coredns-0", &["coredns"]),
];

/// The resource version of the fixture objects as listed.
pub(crate) const BASE_RESOURCE_VERSION: u64 = 1000;

/// A resource kind the server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Namespace,
    Pod,
}

impl Kind {
    pub(crate) fn resource(self) -> &'static str {
        match self {
            Self::Namespace => "namespaces",
            Self::Pod => "pods",
        }
    }

    fn list_kind(self) -> &'static str {
        match self {
            Self::Namespace => "NamespaceList",
            Self::Pod => "PodList",
        }
    }

    pub(crate) fn kind(self) -> &'static str {
        match self {
            Self::Namespace => "Namespace",
            Self::Pod => "Pod",
        }
    }
}

/// RFC 3339 UTC timestamp (`metav1.Time`) of a Unix time.
pub(crate) fn rfc3339(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Howard Hinnant's civil-from-days algorithm.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// `duration.HumanDuration` from k8s.io/apimachinery, as the Age column shows it.
pub(crate) fn human_duration(seconds: u64) -> String {
    let (m, h, d) = (seconds / 60, seconds / 3600, seconds / 86_400);
    let y = d / 365;
    if seconds < 120 {
        format!("{seconds}s")
    } else if m < 10 {
        match seconds % 60 {
            0 => format!("{m}m"),
            s => format!("{m}m{s}s"),
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        match m % 60 {
            0 => format!("{h}h"),
            mm => format!("{h}h{mm}m"),
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 192 {
        match h % 24 {
            0 => format!("{d}d"),
            hh => format!("{d}d{hh}h"),
        }
    } else if y < 2 {
        format!("{d}d")
    } else if y < 8 {
        match d % 365 {
            0 => format!("{y}y"),
            dd => format!("{y}y{dd}d"),
        }
    } else {
        format!("{y}y")
    }
}

/// A deterministic UUID-shaped uid for a fixture object.
fn uid(kind: &str, namespace: &str, name: &str) -> String {
    // FNV-1a, twice with different seeds, is plenty for stable test uids.
    let hash = |seed: u64| {
        let mut h = seed;
        for b in kind.bytes().chain(namespace.bytes()).chain(name.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    let (a, b) = (hash(0xcbf2_9ce4_8422_2325), hash(0x8422_2325_cbf2_9ce4));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// The fixture objects, created `age` seconds before the server started.
#[derive(Debug, Clone)]
pub(crate) struct Fixtures {
    pub(crate) created: u64,
    namespaces: Vec<Value>,
    pods: Vec<Value>,
}

impl Fixtures {
    pub(crate) fn new(now: u64) -> Self {
        // Ten days old: the Age column then reads "10d".
        let created = now.saturating_sub(10 * 86_400);
        let ts = rfc3339(created);
        let mut rv = BASE_RESOURCE_VERSION - 100;
        let mut next_rv = || {
            rv += 7;
            rv.to_string()
        };
        let namespaces = NAMESPACES
            .iter()
            .map(|name| {
                json!({
                    "metadata": {
                        "name": name,
                        "uid": uid("Namespace", "", name),
                        "resourceVersion": next_rv(),
                        "creationTimestamp": ts,
                        "labels": { "kubernetes.io/metadata.name": name },
                    },
                    "spec": { "finalizers": ["kubernetes"] },
                    "status": { "phase": "Active" },
                })
            })
            .collect();
        let pods = PODS
            .iter()
            .enumerate()
            .map(|(i, (namespace, name, containers))| {
                let app = name.split('-').next().unwrap_or(name);
                let mut metadata = json!({
                    "name": name,
                    "namespace": namespace,
                    "uid": uid("Pod", namespace, name),
                    "resourceVersion": next_rv(),
                    "creationTimestamp": ts,
                    "labels": { "app": app },
                });
                if containers.len() > 1 {
                    // kubectl exec/logs pick this container when none is named.
                    metadata["annotations"] =
                        json!({ "kubectl.kubernetes.io/default-container": containers[0] });
                }
                json!({
                    "metadata": metadata,
                    "spec": {
                        "containers": containers.iter().map(|c| json!({
                            "name": c, "image": format!("registry.invalid/testbed/{c}:1.0"),
                            "imagePullPolicy": "IfNotPresent",
                        })).collect::<Vec<_>>(),
                        "nodeName": "testbed-node",
                        "restartPolicy": "Always",
                        "serviceAccountName": "default",
                    },
                    "status": {
                        "phase": "Running",
                        "hostIP": "192.0.2.10",
                        "podIP": format!("192.0.2.{}", 20 + i),
                        "startTime": ts,
                        "conditions": [
                            { "type": "Ready", "status": "True", "lastTransitionTime": ts },
                            { "type": "ContainersReady", "status": "True", "lastTransitionTime": ts },
                        ],
                        "containerStatuses": containers.iter().map(|c| json!({
                            "name": c, "ready": true, "started": true, "restartCount": 0,
                            "image": format!("registry.invalid/testbed/{c}:1.0"), "imageID": "",
                            "state": { "running": { "startedAt": ts } },
                        })).collect::<Vec<_>>(),
                    },
                })
            })
            .collect();
        Self {
            created,
            namespaces,
            pods,
        }
    }

    /// Objects of `kind` in `namespace` (all namespaces when empty).
    pub(crate) fn objects(&self, kind: Kind, namespace: &str) -> Vec<Value> {
        let all = match kind {
            Kind::Namespace => &self.namespaces,
            Kind::Pod => &self.pods,
        };
        all.iter()
            .filter(|o| {
                kind == Kind::Namespace
                    || namespace.is_empty()
                    || o["metadata"]["namespace"] == namespace
            })
            .cloned()
            .collect()
    }

    pub(crate) fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        self.objects(kind, namespace)
            .into_iter()
            .find(|o| o["metadata"]["name"] == name)
    }
}

/// Adds `kind` and `apiVersion`, as single-object responses and watch
/// event objects carry them.
pub(crate) fn with_type(kind: Kind, mut object: Value) -> Value {
    object["kind"] = json!(kind.kind());
    object["apiVersion"] = json!("v1");
    object
}

pub(crate) fn list(kind: Kind, items: Vec<Value>, resource_version: u64) -> Value {
    json!({
        "kind": kind.list_kind(),
        "apiVersion": "v1",
        "metadata": { "resourceVersion": resource_version.to_string() },
        "items": items,
    })
}

/// Whether a request asked for a `meta.k8s.io/v1` Table (kubectl's
/// server-side printing: `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...`).
pub(crate) fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        params.contains(&"as=Table")
            && params.contains(&"g=meta.k8s.io")
            && params.contains(&"v=v1")
    })
}

pub(crate) const TABLE_CONTENT_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

fn column(name: &str, kind: &str, format: &str, description: &str, priority: u8) -> Value {
    json!({ "name": name, "type": kind, "format": format, "description": description, "priority": priority })
}

/// How much of each object a Table row carries (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum IncludeObject {
    /// `PartialObjectMetadata` (kube's default).
    #[default]
    Metadata,
    /// The whole object (kubectl asks for this with `--sort-by`).
    Object,
    /// No object.
    None,
}

impl IncludeObject {
    pub(crate) fn from_query(value: Option<&str>) -> Self {
        match value {
            Some("Object") => Self::Object,
            Some("None") => Self::None,
            _ => Self::Metadata,
        }
    }
}

/// A Table of `objects` (`meta.k8s.io/v1` `Table`), as kube's server-side
/// printing renders it.
pub(crate) fn table(
    kind: Kind,
    objects: &[Value],
    resource_version: u64,
    age_seconds: u64,
    include: IncludeObject,
) -> Value {
    let name_col = column(
        "Name",
        "string",
        "name",
        "Name must be unique within a namespace.",
        0,
    );
    let age_col = column(
        "Age",
        "string",
        "",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
        0,
    );
    let columns = match kind {
        Kind::Namespace => vec![
            name_col,
            column("Status", "string", "", "The status of the namespace", 0),
            age_col,
        ],
        Kind::Pod => vec![
            name_col,
            column(
                "Ready",
                "string",
                "",
                "The aggregate readiness state of this pod for accepting traffic.",
                0,
            ),
            column(
                "Status",
                "string",
                "",
                "The aggregate status of the containers in this pod.",
                0,
            ),
            column(
                "Restarts",
                "string",
                "",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
                0,
            ),
            age_col,
            column(
                "IP",
                "string",
                "",
                "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
                1,
            ),
            column(
                "Node",
                "string",
                "",
                "NodeName is a request to schedule this pod onto a specific node.",
                1,
            ),
        ],
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let name = o["metadata"]["name"].clone();
            let age = human_duration(age_seconds);
            let cells = match kind {
                Kind::Namespace => json!([name, o["status"]["phase"], age]),
                Kind::Pod => {
                    let statuses = o["status"]["containerStatuses"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    let ready = statuses.iter().filter(|s| s["ready"] == true).count();
                    json!([
                        name,
                        format!("{ready}/{}", statuses.len()),
                        o["status"]["phase"],
                        "0",
                        age,
                        o["status"]["podIP"],
                        o["spec"]["nodeName"],
                    ])
                }
            };
            let object = match include {
                IncludeObject::Metadata => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o["metadata"],
                }),
                IncludeObject::Object => with_type(kind, o.clone()),
                IncludeObject::None => return json!({ "cells": cells }),
            };
            json!({ "cells": cells, "object": object })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": { "resourceVersion": resource_version.to_string() },
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// Applies `labelSelector` (equality and existence requirements, comma =
/// AND) and `fieldSelector` (`metadata.name`, `metadata.namespace`).
pub(crate) fn select(
    objects: Vec<Value>,
    label_selector: Option<&str>,
    field_selector: Option<&str>,
) -> Result<Vec<Value>, String> {
    let mut out = objects;
    if let Some(fields) = field_selector.filter(|s| !s.is_empty()) {
        for req in fields.split(',') {
            let (key, want, negate) = if let Some((k, v)) = req.split_once("!=") {
                (k, v, true)
            } else if let Some((k, v)) = req.split_once("==") {
                (k, v, false)
            } else if let Some((k, v)) = req.split_once('=') {
                (k, v, false)
            } else {
                return Err(format!("invalid field selector: {req:?}"));
            };
            let field = match key.trim() {
                "metadata.name" => "name",
                "metadata.namespace" => "namespace",
                other => return Err(format!("field label not supported: {other}")),
            };
            out.retain(|o| (o["metadata"][field] == want.trim()) != negate);
        }
    }
    if let Some(labels) = label_selector.filter(|s| !s.is_empty()) {
        for req in labels.split(',').map(str::trim) {
            let labels_of = |o: &Value| o["metadata"]["labels"].clone();
            if let Some((k, v)) = req.split_once("!=") {
                out.retain(|o| labels_of(o)[k.trim()] != v.trim());
            } else if let Some((k, v)) = req.split_once("==").or_else(|| req.split_once('=')) {
                out.retain(|o| labels_of(o)[k.trim()] == v.trim());
            } else if let Some(k) = req.strip_prefix('!') {
                out.retain(|o| labels_of(o).get(k.trim()).is_none());
            } else if !req.is_empty()
                && req
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
            {
                out.retain(|o| labels_of(o).get(req).is_some());
            } else {
                return Err(format!("unable to parse requirement: {req:?}"));
            }
        }
    }
    Ok(out)
}

/// `GET /version`.
pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0+headlamp-testbed",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `GET /api` (`APIVersions`).
pub(crate) fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }],
    })
}

const GROUPS: &[&str] = &["authentication.k8s.io", "authorization.k8s.io"];

fn group(name: &str) -> Value {
    let gv = json!({ "groupVersion": format!("{name}/v1"), "version": "v1" });
    json!({ "name": name, "versions": [gv], "preferredVersion": gv })
}

/// `GET /apis` (`APIGroupList`).
pub(crate) fn api_group_list() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": GROUPS.iter().map(|g| group(g)).collect::<Vec<_>>(),
    })
}

/// `GET /apis/<group>` (`APIGroup`).
pub(crate) fn api_group(name: &str) -> Option<Value> {
    GROUPS.contains(&name).then(|| {
        let mut g = group(name);
        g["kind"] = json!("APIGroup");
        g["apiVersion"] = json!("v1");
        g
    })
}

fn resource(name: &str, namespaced: bool, kind: &str, verbs: &[&str], short: &[&str]) -> Value {
    let mut r = json!({
        "name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": verbs,
    });
    if !short.is_empty() {
        r["shortNames"] = json!(short);
    }
    if !name.contains('/') {
        r["singularName"] = json!(kind.to_ascii_lowercase());
    }
    r
}

/// `GET /api/v1` or `/apis/<group>/v1` (`APIResourceList`), listing only
/// what this server serves, with the verbs it implements.
pub(crate) fn api_resource_list(group_version: &str) -> Option<Value> {
    let resources = match group_version {
        "v1" => vec![
            resource(
                "namespaces",
                false,
                "Namespace",
                &["get", "list", "watch"],
                &["ns"],
            ),
            {
                let mut pods = resource("pods", true, "Pod", &["get", "list", "watch"], &["po"]);
                pods["categories"] = json!(["all"]);
                pods
            },
            resource(
                "pods/attach",
                true,
                "PodAttachOptions",
                &["create", "get"],
                &[],
            ),
            resource("pods/exec", true, "PodExecOptions", &["create", "get"], &[]),
            resource("pods/log", true, "Pod", &["get"], &[]),
        ],
        "authentication.k8s.io/v1" => vec![resource(
            "selfsubjectreviews",
            false,
            "SelfSubjectReview",
            &["create"],
            &[],
        )],
        "authorization.k8s.io/v1" => vec![
            resource(
                "selfsubjectaccessreviews",
                false,
                "SelfSubjectAccessReview",
                &["create"],
                &[],
            ),
            resource(
                "selfsubjectrulesreviews",
                false,
                "SelfSubjectRulesReview",
                &["create"],
                &[],
            ),
        ],
        _ => return None,
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// The container a `pods/exec` or `pods/log` request addresses: the
/// `container` parameter, or the only container; kube-apiserver refuses a
/// missing name on a multi-container pod and an unknown one with these 400s.
pub(crate) fn select_container(pod: &Value, requested: Option<&str>) -> Result<String, String> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let containers: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    match requested {
        Some(c) if containers.contains(&c) => Ok(c.to_owned()),
        Some(c) => Err(format!("container {c} is not valid for pod {pod_name}")),
        None if containers.len() == 1 => Ok(containers[0].to_owned()),
        None => Err(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            containers.join(" ")
        )),
    }
}

/// The media type of aggregated discovery (KEP-3352, GA in 1.30), which
/// kubectl asks `/api` and `/apis` for first.
pub(crate) const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether `Accept` asks for `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`.
pub(crate) fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        params.contains(&"as=APIGroupDiscoveryList")
            && params.contains(&"g=apidiscovery.k8s.io")
            && params.contains(&"v=v2")
    })
}

/// One `APIGroupDiscovery`, built from the same `APIResourceList` the
/// legacy endpoints serve so the two views cannot disagree.
fn group_discovery(group: &str) -> Option<Value> {
    let group_version = if group.is_empty() {
        "v1".to_owned()
    } else {
        format!("{group}/v1")
    };
    let list = api_resource_list(&group_version)?;
    let kind_of = |r: &Value| json!({ "group": group, "version": "v1", "kind": r["kind"] });
    let all = list["resources"].as_array().cloned().unwrap_or_default();
    let resources: Vec<Value> = all
        .iter()
        .filter(|r| !r["name"].as_str().unwrap_or("").contains('/'))
        .map(|r| {
            let name = r["name"].as_str().unwrap_or("");
            let prefix = format!("{name}/");
            let mut d = json!({
                "resource": name,
                "responseKind": kind_of(r),
                "scope": if r["namespaced"] == true { "Namespaced" } else { "Cluster" },
                "singularResource": r["singularName"],
                "verbs": r["verbs"],
            });
            for key in ["shortNames", "categories"] {
                if !r[key].is_null() {
                    d[key] = r[key].clone();
                }
            }
            let subresources: Vec<Value> = all
                .iter()
                .filter_map(|s| {
                    let sub = s["name"].as_str()?.strip_prefix(&prefix)?;
                    Some(json!({ "subresource": sub, "responseKind": kind_of(s), "verbs": s["verbs"] }))
                })
                .collect();
            if !subresources.is_empty() {
                d["subresources"] = json!(subresources);
            }
            d
        })
        .collect();
    let mut metadata = json!({ "creationTimestamp": null });
    if !group.is_empty() {
        metadata["name"] = json!(group);
    }
    Some(json!({
        "metadata": metadata,
        "versions": [{ "version": "v1", "resources": resources, "freshness": "Current" }],
    }))
}

/// `GET /api` (core) or `/apis` (named groups) as an
/// `APIGroupDiscoveryList`.
pub(crate) fn aggregated_discovery(core: bool) -> Value {
    let items: Vec<Value> = if core {
        group_discovery("").into_iter().collect()
    } else {
        GROUPS.iter().filter_map(|g| group_discovery(g)).collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_formats() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(10 * 86_400), "10d");
        assert_eq!(human_duration(3 * 86_400 + 3600), "3d1h");
    }

    #[test]
    fn selectors_and_tables() {
        let f = Fixtures::new(2_000_000_000);
        let pods = f.objects(Kind::Pod, "default");
        assert_eq!(pods.len(), 2);
        let echo = select(pods.clone(), Some("app=echo"), None).unwrap();
        assert_eq!(echo.len(), 1);
        assert_eq!(
            select(pods.clone(), None, Some("metadata.name=web-0"))
                .unwrap()
                .len(),
            1
        );
        assert!(select(pods.clone(), None, Some("spec.nodeName=x")).is_err());
        assert_eq!(select(pods, Some("!app"), None).unwrap().len(), 0);
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
        let core = aggregated_discovery(true);
        let pods = &core["items"][0]["versions"][0]["resources"][1];
        assert_eq!(pods["resource"], "pods");
        assert_eq!(pods["scope"], "Namespaced");
        let subresources: Vec<&str> = pods["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["subresource"].as_str())
            .collect();
        assert_eq!(subresources, ["attach", "exec", "log"]);
        assert_eq!(
            aggregated_discovery(false)["items"][0]["metadata"]["name"],
            "authentication.k8s.io"
        );
        assert!(wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        ));
        let t = table(
            Kind::Pod,
            &f.objects(Kind::Pod, "default"),
            1000,
            864_000,
            IncludeObject::default(),
        );
        assert_eq!(t["rows"][0]["cells"][4], "10d");
        assert_eq!(t["rows"][1]["cells"][1], "2/2");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_ne!(uid("Pod", "a", "b"), uid("Pod", "a", "c"));
    }
}
