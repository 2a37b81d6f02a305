//! The four sources, layered with figment: defaults < `-config` file <
//! `HEADLAMP_CONFIG_*` environment < command-line flags.
//!
//! Every layer is a flat dictionary keyed by flag name. The environment layer
//! maps each flag's variable explicitly instead of using figment's
//! `Env::split("_")`, which would read `HEADLAMP_CONFIG_OIDC_CLIENT_ID` as the
//! nested key `oidc.client.id` and silently lose it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use crate::error::{Problem, Source};
use crate::flags::{self, ENV_PREFIX, FLAGS, FlagSpec};

/// The environment variables configuration reads, captured once so tests can
/// pass their own instead of mutating the process environment.
#[derive(Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
    not_unicode: Vec<String>,
}

impl Environment {
    /// Variables that matter to configuration: `HEADLAMP_CONFIG_*`,
    /// `KUBECONFIG` and `HOME`.
    fn is_relevant(name: &str) -> bool {
        name.starts_with(ENV_PREFIX) || name == "KUBECONFIG" || name == "HOME"
    }

    /// Captures the relevant variables of this process.
    pub fn from_process() -> Self {
        let mut env = Self::default();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().map(str::to_owned) else {
                continue;
            };
            if !Self::is_relevant(&name) {
                continue;
            }
            match value.into_string() {
                Ok(value) => {
                    env.vars.insert(name, value);
                }
                Err(_) => env.not_unicode.push(name),
            }
        }
        env
    }

    /// An environment made of the given pairs (irrelevant names are ignored).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut env = Self::default();
        for (name, value) in pairs {
            let name = name.into();
            if Self::is_relevant(&name) {
                env.vars.insert(name, value.into());
            }
        }
        env
    }

    /// A variable's value; empty counts as unset (an empty `value: ""` in a
    /// Kubernetes manifest means "not configured").
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

impl fmt::Debug for Environment {
    // Values may be secrets (HEADLAMP_CONFIG_OIDC_CLIENT_SECRET): names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environment")
            .field("names", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A flat dictionary with a name, so figment can tell which layer a value
/// came from.
struct Layer {
    metadata: Metadata,
    dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

const DEFAULTS: &str = "default";
const FILE: &str = "config file";
const ENV: &str = "environment";
const FLAGS_LAYER: &str = "command line";

/// A flag's merged value and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) value: Option<Value>,
    pub(crate) source: Source,
}

/// All merged values, plus problems found while reading the sources.
pub(crate) struct Merged {
    pub(crate) values: BTreeMap<&'static str, Resolved>,
    pub(crate) config_file: Option<PathBuf>,
    pub(crate) problems: Vec<Problem>,
    pub(crate) warnings: Vec<String>,
}

/// Layers defaults, the optional file, the environment and the flags.
pub(crate) fn merge(flag_values: Dict, env: &Environment) -> Merged {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();

    let defaults: Dict = FLAGS
        .iter()
        .filter_map(|spec| {
            spec.default
                .map(|d| (spec.name.to_owned(), Value::from(d.to_owned())))
        })
        .collect();

    let env_dict = env_layer(env, &mut problems, &mut warnings);

    // The file's path itself comes from a flag or the environment only.
    let config_file = string_of(flag_values.get("config"))
        .or_else(|| string_of(env_dict.get("config")))
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    let file_dict = match &config_file {
        Some(path) => file_layer(path, &mut problems),
        None => Dict::new(),
    };

    let figment = Figment::new()
        .merge(Layer {
            metadata: Metadata::named(DEFAULTS),
            dict: defaults,
        })
        .merge(Layer {
            metadata: Metadata::named(FILE),
            dict: file_dict,
        })
        .merge(Layer {
            metadata: Metadata::named(ENV),
            dict: env_dict,
        })
        .merge(Layer {
            metadata: Metadata::named(FLAGS_LAYER),
            dict: flag_values,
        });

    let merged: Dict = match figment.extract() {
        Ok(dict) => dict,
        Err(err) => {
            // Only reachable if a layer is not a dictionary, which ours
            // always are; still a message rather than a panic.
            problems.push(Problem {
                flag: "config",
                message: format!("cannot merge configuration sources: {err}"),
                source: None,
            });
            Dict::new()
        }
    };

    let mut values = BTreeMap::new();
    for spec in FLAGS {
        let value = merged.get(spec.name).cloned();
        let source = match value
            .as_ref()
            .and_then(|v| figment.get_metadata(v.tag()))
            .map(|m| m.name.as_ref())
        {
            Some(FILE) => config_file
                .clone()
                .map(Source::File)
                .unwrap_or(Source::Default),
            Some(ENV) => Source::Env(spec.env_var()),
            Some(FLAGS_LAYER) => Source::Flag,
            _ => Source::Default,
        };
        values.insert(spec.name, Resolved { value, source });
    }
    Merged {
        values,
        config_file,
        problems,
        warnings,
    }
}

fn string_of(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::String(_, s)) => Some(s.clone()),
        _ => None,
    }
}

fn env_layer(env: &Environment, problems: &mut Vec<Problem>, warnings: &mut Vec<String>) -> Dict {
    let mut dict = Dict::new();
    for spec in FLAGS {
        let var = spec.env_var();
        if let Some(value) = env.get(&var) {
            dict.insert(spec.name.to_owned(), Value::from(value.to_owned()));
        }
    }
    for name in &env.not_unicode {
        if let Some(spec) = spec_for_env(name) {
            problems.push(Problem {
                flag: spec.name,
                message: "the value is not valid UTF-8".to_owned(),
                source: Some(Source::Env(name.clone())),
            });
        }
    }
    // Unknown HEADLAMP_CONFIG_* variables are warnings, not errors: Headlamp's
    // Helm chart and deployments set variables for Headlamp features this
    // server does not implement, and Headlamp itself ignores unknown ones.
    for name in env.vars.keys().filter(|n| n.starts_with(ENV_PREFIX)) {
        if spec_for_env(name).is_none() {
            let as_flag = name[ENV_PREFIX.len()..]
                .to_ascii_lowercase()
                .replace('_', "-");
            let hint = match flags::closest_name(&as_flag, false) {
                Some(s) => format!(" (did you mean {}?)", flags::env_var_for(s)),
                None => String::new(),
            };
            warnings.push(format!(
                "environment variable {name} is not a headlamp-server setting and is ignored{hint}"
            ));
        }
    }
    dict
}

fn spec_for_env(name: &str) -> Option<&'static FlagSpec> {
    FLAGS.iter().find(|spec| spec.env_var() == name)
}

fn file_layer(path: &Path, problems: &mut Vec<Problem>) -> Dict {
    let source = Some(Source::File(path.to_owned()));
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => {
            problems.push(Problem {
                flag: "config",
                message: format!(
                    "cannot read config file {}: {err}; expected a readable TOML file",
                    path.display()
                ),
                source,
            });
            return Dict::new();
        }
    };
    let table: toml::Table = match toml::from_str(&text) {
        Ok(table) => table,
        Err(err) => {
            problems.push(Problem {
                flag: "config",
                message: format!(
                    "{} is not valid TOML: {}",
                    path.display(),
                    err.to_string().trim_end()
                ),
                source,
            });
            return Dict::new();
        }
    };
    let mut dict = Dict::new();
    for (key, value) in table {
        if key == "config" {
            problems.push(Problem {
                flag: "config",
                message: "a config file cannot name another config file; remove the `config` key"
                    .to_owned(),
                source: source.clone(),
            });
            continue;
        }
        if flags::find_flag(&key).is_none() {
            let hint = match flags::closest_name(&key, false) {
                Some(s) => format!(" (did you mean `{s}`?)"),
                None => " (keys are flag names, see --help)".to_owned(),
            };
            problems.push(Problem {
                flag: "config",
                message: format!("unknown key `{key}` in {}{hint}", path.display()),
                source: source.clone(),
            });
            continue;
        }
        match Value::serialize(&value) {
            Ok(value) => {
                dict.insert(key, value);
            }
            Err(err) => problems.push(Problem {
                flag: "config",
                message: format!("cannot use key `{key}` in {}: {err}", path.display()),
                source: source.clone(),
            }),
        }
    }
    dict
}

/// Splits a list string, trimming items and dropping empty ones (so
/// `"a, ,b,"` is `["a", "b"]`).
pub(crate) fn split_list(value: &str, separator: char) -> Vec<String> {
    value
        .split(separator)
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}
