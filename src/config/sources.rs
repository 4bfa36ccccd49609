//! Gathering option values from the defaults, the file, the environment and the flags, in
//! rising precedence, with every type problem reported and none fatal.
use std::collections::{BTreeMap, HashMap};

use super::options::{self, NOT_OPTIONS, OPTIONS, Ty};

/// Where a value came from: it says how to name it in messages and what a relative path is
/// relative to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File,
    Env(String),
    Flag(String),
}

/// One option's value, of the type its [`Ty`] wants.
#[derive(Debug, Clone)]
pub struct Given {
    pub value: toml::Value,
    pub origin: Origin,
}

/// Every value found, and the problems met finding them.
#[derive(Debug, Default)]
pub struct Gathered {
    pub values: BTreeMap<&'static str, Given>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// How `key` is named in a message, with where its value came from when not the file.
pub fn label(key: &str, origin: &Origin) -> String {
    match origin {
        Origin::Env(var) => format!("{key} (from {var})"),
        Origin::Flag(flag) => format!("{key} (from {flag})"),
        Origin::Default | Origin::File => key.to_string(),
    }
}

/// Collects values: defaults, then `file` (already parsed), then `env`, then `flags`
/// (key, value, the flag's name).
pub fn gather(
    file: Option<&toml::Table>,
    env: &HashMap<String, String>,
    flags: &[(String, String, String)],
) -> Gathered {
    let mut g = Gathered::default();
    for o in OPTIONS {
        if let Some(text) = o.default {
            // The table's defaults are TOML literals; a test parses every one.
            if let Ok(value) = text.parse::<toml::Value>() {
                g.values.insert(
                    o.key,
                    Given {
                        value,
                        origin: Origin::Default,
                    },
                );
            }
        }
    }
    if let Some(table) = file {
        walk(&mut g, "", table);
    }
    let mut vars: Vec<(&String, &String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with("CBM_HUB_"))
        .collect();
    vars.sort();
    for (var, text) in vars {
        match OPTIONS.iter().find(|o| options::env_name(o.key) == *var) {
            Some(o) => g.set_text(o.key, o.ty, text, Origin::Env(var.clone())),
            None if NOT_OPTIONS.contains(&var.as_str()) => {}
            // Other commands of the binary may read variables of their own: a warning only.
            None => g.warnings.push(format!(
                "{var}: no configuration option has this environment variable; ignored"
            )),
        }
    }
    for (key, text, flag) in flags {
        match options::find(key) {
            Some(o) => g.set_text(o.key, o.ty, text, Origin::Flag(flag.clone())),
            None => g.errors.push(format!("{flag} {key}: {}", unknown(key))),
        }
    }
    g
}

fn unknown(key: &str) -> String {
    match options::suggest(key) {
        Some(s) => format!("unknown key (did you mean `{s}`?)"),
        None => "unknown key".to_string(),
    }
}

/// Walks a table of the file, checking every key against the options.
fn walk(g: &mut Gathered, prefix: &str, table: &toml::Table) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if let Some(o) = options::find(&key) {
            match check_type(o.ty, v) {
                Ok(()) => {
                    g.values.insert(
                        o.key,
                        Given {
                            value: v.clone(),
                            origin: Origin::File,
                        },
                    );
                }
                Err(expected) => g.errors.push(format!(
                    "{key}: expected {expected}, found {} {v}",
                    v.type_str()
                )),
            }
        } else if options::is_table(&key) {
            match v {
                toml::Value::Table(t) => walk(g, &key, t),
                other => g.errors.push(format!(
                    "{key}: expected a table of options, found {} {other}",
                    other.type_str()
                )),
            }
        } else {
            g.errors.push(format!("{key}: {}", unknown(&key)));
        }
    }
}

/// Whether a file value has the TOML type `ty` wants; Err names the type wanted.
fn check_type(ty: Ty, v: &toml::Value) -> Result<(), &'static str> {
    use toml::Value as V;
    match (ty, v) {
        (Ty::Bool, V::Boolean(_)) | (Ty::Int { .. }, V::Integer(_)) => Ok(()),
        (Ty::Addr | Ty::OptAddr | Ty::Dir | Ty::File | Ty::LogFilter, V::String(_)) => Ok(()),
        (Ty::FileList, V::Array(a)) if a.iter().all(|e| e.is_str()) => Ok(()),
        (Ty::Bool, _) => Err("true or false"),
        (Ty::Int { .. }, _) => Err("an integer"),
        (Ty::FileList, _) => Err("an array of paths"),
        _ => Err("a string"),
    }
}

impl Gathered {
    /// Sets `key` from an environment variable or a flag: text converted to the option's type.
    fn set_text(&mut self, key: &'static str, ty: Ty, text: &str, origin: Origin) {
        use toml::Value as V;
        let value = match ty {
            Ty::Int { .. } => match text.trim().parse::<i64>() {
                Ok(n) => V::Integer(n),
                Err(_) => {
                    self.errors.push(format!(
                        "{}: expected an integer, found {text:?}",
                        label(key, &origin)
                    ));
                    return;
                }
            },
            Ty::Bool => match text.trim() {
                "true" | "1" => V::Boolean(true),
                "false" | "0" => V::Boolean(false),
                _ => {
                    self.errors.push(format!(
                        "{}: expected true or false, found {text:?}",
                        label(key, &origin)
                    ));
                    return;
                }
            },
            Ty::FileList => V::Array(
                text.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| V::String(p.to_string()))
                    .collect(),
            ),
            Ty::Addr | Ty::OptAddr | Ty::Dir | Ty::File | Ty::LogFilter => {
                V::String(text.to_string())
            }
        };
        self.values.insert(key, Given { value, origin });
    }
}
