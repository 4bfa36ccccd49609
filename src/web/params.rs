//! Query strings: several values per name (`state=EE&state=CL`), as HTML forms send them.
use std::collections::BTreeMap;

/// The parameters of one request's query string.
#[derive(Debug, Default, Clone)]
pub struct Params(BTreeMap<String, Vec<String>>);

/// Longest query string read; longer ones are cut (no form here needs more).
const MAX_QUERY: usize = 8 * 1024;

impl Params {
    pub fn parse(query: Option<&str>) -> Params {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let query = query.unwrap_or_default();
        let query = &query.as_bytes()[..query.len().min(MAX_QUERY)];
        for (k, v) in form_urlencoded::parse(query) {
            let v = v.trim();
            if !v.is_empty() {
                map.entry(k.into_owned()).or_default().push(v.to_string());
            }
        }
        Params(map)
    }

    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0
            .get(name)
            .and_then(|v| v.first())
            .map_or("", String::as_str)
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0.get(name).cloned().unwrap_or_default()
    }

    /// `name` as a list with one value (the form's single choice), or none.
    pub fn one(&self, name: &str) -> Vec<String> {
        let v = self.get(name);
        if v.is_empty() {
            Vec::new()
        } else {
            vec![v.to_string()]
        }
    }

    /// The query string of these parameters with `name` set to `value` (or removed when
    /// empty): links to the next page keep the filters.
    pub fn with(&self, name: &str, value: &str) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, vs) in &self.0 {
            if k != name {
                for v in vs {
                    out.append_pair(k, v);
                }
            }
        }
        if !value.is_empty() {
            out.append_pair(name, value);
        }
        out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_values_and_links_keep_filters() {
        let p = Params::parse(Some("state=EE&state=CL&q=a+b&page=&kind=notice"));
        assert_eq!(p.all("state"), ["EE", "CL"]);
        assert_eq!(p.get("q"), "a b");
        assert_eq!(p.get("page"), "");
        assert_eq!(p.one("kind"), ["notice"]);
        assert_eq!(
            p.with("page", "tok"),
            "kind=notice&q=a+b&state=EE&state=CL&page=tok"
        );
        assert_eq!(p.with("kind", ""), "q=a+b&state=EE&state=CL");
    }
}
