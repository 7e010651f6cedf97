//! The identity of a `user_threshold` series: which labels a key's rows carry. Resolution
//! builds its rows with it, and the checks use it to refuse two keys of one layer that would
//! serve the same series (only one of them could be exported).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use crate::doc::Dimension;
use crate::names::split_key;
use crate::value::{Setting, Severity, Threshold};

/// The labels of one `user_threshold` series, the tenant aside.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Series<'a> {
    pub component: &'a str,
    pub metric: &'a str,
    pub severity: Severity,
    /// Served label names (`<label>_re` for a regex) and values, sorted by label name.
    pub dims: Vec<(Cow<'a, str>, &'a str)>,
}

/// The severity of a row: the one the setting gives, else `critical` for a `<key>_critical`
/// tier, else `warning`.
pub(crate) fn severity_of(setting: &Setting, tier_base: Option<&str>) -> Severity {
    match setting {
        Setting::Value {
            severity: Some(s), ..
        } => *s,
        _ if tier_base.is_some() => Severity::Critical,
        _ => Severity::Warning,
    }
}

/// The served labels of a key's dimensions, sorted by label name.
pub(crate) fn dimension_labels(dims: &[Dimension]) -> Vec<(Cow<'_, str>, &str)> {
    let mut labels: Vec<_> = dims
        .iter()
        .map(|d| (d.label_name(), d.value.as_str()))
        .collect();
    labels.sort();
    labels
}

impl<'a> Series<'a> {
    /// The series of key `name` (with `dims`) at `severity`; `tier_base` is the base key when
    /// `name` is a `<key>_critical` tier.
    pub fn of(
        name: &'a str,
        tier_base: Option<&'a str>,
        dims: &'a [Dimension],
        severity: Severity,
    ) -> Self {
        let (component, metric) = split_key(tier_base.unwrap_or(name));
        Series {
            component,
            metric,
            severity,
            dims: dimension_labels(dims),
        }
    }

    /// Every series a key can serve at some instant: one per severity its base value or an
    /// override gives. A disabled setting claims the series it switches off, so that
    /// `x_critical: disable` next to `x: "8:critical"` is refused as ambiguous too.
    pub fn claimed(
        name: &'a str,
        tier_base: Option<&'a str>,
        dims: &'a [Dimension],
        value: &Threshold,
    ) -> Vec<Self> {
        let overrides = value.schedule().into_iter().flat_map(|s| &s.overrides);
        let mut severities: Vec<Severity> = std::iter::once(&value.base)
            .chain(overrides.map(|o| &o.setting))
            .map(|s| severity_of(s, tier_base))
            .collect();
        severities.sort();
        severities.dedup();
        severities
            .into_iter()
            .map(|sev| Series::of(name, tier_base, dims, sev))
            .collect()
    }
}

/// `user_threshold{component="redis",metric="queue_length",severity="warning",queue="a"}`.
impl fmt::Display for Series<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "user_threshold{{component={:?},metric={:?},severity=\"{}\"",
            self.component, self.metric, self.severity
        )?;
        for (label, value) in &self.dims {
            write!(f, ",{label}={value:?}")?;
        }
        f.write_str("}")
    }
}

/// Keys of one layer, in document order, that claim a series an earlier key of the same layer
/// claims already: `(later, earlier, series)` by index, each later key reported once.
pub(crate) fn collisions<'a>(
    claims: impl IntoIterator<Item = Vec<Series<'a>>>,
) -> Vec<(usize, usize, Series<'a>)> {
    let mut first: BTreeMap<Series<'a>, usize> = BTreeMap::new();
    let mut found = Vec::new();
    for (i, series) in claims.into_iter().enumerate() {
        let mut reported = false;
        for s in series {
            match first.get(&s) {
                Some(&j) if !reported => {
                    found.push((i, j, s));
                    reported = true;
                }
                Some(_) => {}
                None => {
                    first.insert(s, i);
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_key_ref;

    fn claims_of(raw: &str, value: Setting, tier_base: Option<&'static str>) -> Vec<String> {
        let key = Box::leak(Box::new(parse_key_ref(raw).unwrap()));
        let tier = tier_base.filter(|_| key.name().ends_with("_critical"));
        Series::claimed(key.name(), tier, key.dims(), &Threshold::fixed(value))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn spelling_and_label_order_do_not_change_the_series() {
        let v = Setting::Value {
            value: 1.0,
            severity: None,
        };
        let a = claims_of("x_y{q='a', b=\"c\"}", v, None);
        assert_eq!(a, claims_of("x_y{ b = 'c' ,q=\"a\"}", v, None));
        assert_eq!(
            a,
            vec![
                "user_threshold{component=\"x\",metric=\"y\",severity=\"warning\",b=\"c\",q=\"a\"}"
            ]
        );
        // A regex label is served as <label>_re, sorted by that name.
        assert_eq!(
            claims_of("x_y{q=~'a', q_b='c'}", v, None),
            vec![
                "user_threshold{component=\"x\",metric=\"y\",severity=\"warning\",q_b=\"c\",q_re=\"a\"}"
            ]
        );
        assert_eq!(
            claims_of("x_y{q=~'a'}", v, None),
            claims_of("x_y{q_re='a'}", v, None)
        );
    }

    #[test]
    fn a_tier_serves_the_base_key_at_critical() {
        let plain = Setting::Value {
            value: 7.0,
            severity: None,
        };
        let critical = Setting::Value {
            value: 8.0,
            severity: Some(Severity::Critical),
        };
        assert_eq!(
            claims_of("x_y_critical{q='a'}", plain, Some("x_y")),
            claims_of("x_y{q='a'}", critical, None)
        );
        assert_eq!(
            claims_of("x_y_critical", Setting::Disabled, Some("x_y")),
            claims_of("x_y", critical, None)
        );
    }

    #[test]
    fn collisions_name_the_earlier_key() {
        let s = |sev| Series {
            component: "x",
            metric: "y",
            severity: sev,
            dims: Vec::new(),
        };
        let found = collisions([
            vec![s(Severity::Warning)],
            vec![s(Severity::Critical)],
            vec![s(Severity::Critical), s(Severity::Warning)],
        ]);
        assert_eq!(found, vec![(2, 1, s(Severity::Critical))]);
    }
}
