//! The packs' threshold keys from `dynalert_rules::catalogue()`, each signal written over the
//! raw exporter series (a recorded signal replaced by its recording rule's expression), and
//! the PromQL rewriting the variants need, done on `promql-parser`'s syntax tree.

use std::collections::{BTreeSet, HashMap};

use anyhow::{Context, Result, anyhow, ensure};
use dynalert_rules::Pack;
use dynalert_rules::pack::KeyDecl;
use promql_parser::label::Matcher;
use promql_parser::parser::{self, Expr, ParenExpr, VectorSelector};

/// One threshold key of a pack.
pub struct Key {
    pub pack: &'static Pack,
    pub name: &'static str,
    pub decl: &'static KeyDecl,
    /// The key's signal over raw series, on one line.
    pub signal: String,
}

/// One alert of a key: its name, severity and default threshold.
pub struct Alert {
    pub name: String,
    pub severity: &'static str,
    pub default: f64,
}

impl Key {
    /// `(<signal>) <op> <threshold>`: an alert condition with its number inlined.
    pub fn against(&self, signal: &str, threshold: f64) -> String {
        format!("({signal}) {} {threshold}", self.decl.op)
    }

    /// The component and metric the key's `user_threshold` rows carry.
    pub fn component_metric(&self) -> (&str, &str) {
        self.name.split_once('_').expect("checked by keys()")
    }

    /// The warning tier's alert, and `<alert>Critical` if the key has a critical tier.
    pub fn alerts(&self) -> Vec<Alert> {
        let (name, default) = (self.decl.alert.name.clone(), self.decl.default);
        let critical = self.decl.default_critical.map(|default| Alert {
            name: format!("{name}Critical"),
            severity: "critical",
            default,
        });
        let warning = Alert {
            name,
            severity: "warning",
            default,
        };
        [Some(warning), critical].into_iter().flatten().collect()
    }
}

/// The keys of `packs`, and the number of recording rules the packs have.
pub fn keys(packs: &[&'static Pack]) -> Result<(Vec<Key>, usize)> {
    let mut recorded: HashMap<&str, Expr> = HashMap::new();
    for rule in packs.iter().flat_map(|p| &p.groups).flat_map(|g| &g.rules) {
        if let Some(name) = &rule.record {
            recorded.insert(name, parse(&rule.expr)?);
        }
    }
    let mut keys = Vec::new();
    for pack in packs {
        for (name, decl) in &pack.keys {
            let mut signal = parse(&decl.signal)?;
            rewrite(&mut signal, &mut |vs| {
                let inlined = recorded.get(vs.name.as_deref()?)?.clone();
                Some(Expr::Paren(ParenExpr {
                    expr: Box::new(inlined),
                }))
            });
            // The per-tenant variant inlines one level of recording rules only.
            let names = selector_names(&signal);
            let nested = names.iter().find(|n| recorded.contains_key(n.as_str()));
            ensure!(
                nested.is_none(),
                "key {name} reads recorded series {nested:?}"
            );
            let mut signal = signal.to_string();
            // A per-tenant rule's alerts carry the dimension's label, as the pack's do.
            if let (Some(d), Some(label)) = (&decl.dimension, &decl.dimension_label) {
                signal = format!("label_replace({signal}, \"{d}\", \"$1\", \"{label}\", \"(.*)\")");
            }
            name.split_once('_')
                .with_context(|| format!("key {name} has no component"))?;
            keys.push(Key {
                pack,
                name,
                decl,
                signal,
            });
        }
    }
    Ok((keys, recorded.len()))
}

pub fn parse(promql: &str) -> Result<Expr> {
    parser::parse(promql).map_err(|e| anyhow!("PromQL {promql:?}: {e}"))
}

/// Calls `f` on every vector selector of `expr` (those of range selectors included); a
/// selector `f` returns an expression for is replaced by it (not inside a range selector).
fn rewrite(expr: &mut Expr, f: &mut dyn FnMut(&mut VectorSelector) -> Option<Expr>) {
    match expr {
        Expr::Aggregate(a) => {
            rewrite(&mut a.expr, f);
            if let Some(param) = &mut a.param {
                rewrite(param, f);
            }
        }
        Expr::Unary(u) => rewrite(&mut u.expr, f),
        Expr::Binary(b) => {
            rewrite(&mut b.lhs, f);
            rewrite(&mut b.rhs, f);
        }
        Expr::Paren(p) => rewrite(&mut p.expr, f),
        Expr::Subquery(s) => rewrite(&mut s.expr, f),
        Expr::Call(c) => c.args.args.iter_mut().for_each(|arg| rewrite(arg, f)),
        Expr::MatrixSelector(m) => {
            f(&mut m.vs);
        }
        Expr::VectorSelector(vs) => {
            if let Some(replacement) = f(vs) {
                *expr = replacement;
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// The metric names of the vector selectors of `expr`.
pub fn selector_names(expr: &Expr) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    rewrite(&mut expr.clone(), &mut |vs| {
        names.extend(vs.name.clone());
        None
    });
    names
}

/// `promql` with `matchers` (PromQL, e.g. `tenant="t1", key!~"a|b"`) added to every selector.
pub fn restrict(promql: &str, matchers: &str) -> Result<String> {
    let added: Vec<Matcher> = match parse(&format!("{{{matchers}}}"))? {
        Expr::VectorSelector(vs) => vs.matchers.matchers,
        other => return Err(anyhow!("{matchers:?} are not matchers: {other}")),
    };
    let mut expr = parse(promql)?;
    rewrite(&mut expr, &mut |vs| {
        vs.matchers.matchers.extend(added.iter().cloned());
        None
    });
    Ok(expr.to_string())
}

/// A PromQL string literal.
pub fn string(value: &str) -> String {
    serde_json::to_string(value).expect("a string always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricts_every_selector_and_names_them() {
        let expr = "max by(tenant) (rate(a_total{x=\"1\"}[5m])) / on(tenant) b or vector(0)";
        let restricted = restrict(expr, "tenant=\"t1\", key!~\"e|j\"").unwrap();
        // promql-parser prints the matchers sorted.
        let a = restricted.contains(r#"a_total{key!~"e|j",tenant="t1",x="1"}[5m]"#);
        let b = restricted.contains(r#"b{key!~"e|j",tenant="t1"} or vector(0)"#);
        assert!(a && b, "{restricted}");
        let names = selector_names(&parse(&restricted).unwrap());
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["a_total", "b"]);
    }

    #[test]
    fn keys_of_the_catalogue_read_raw_series_only() {
        let packs = dynalert_rules::select(&["mariadb".into(), "redis".into()]).unwrap();
        let (keys, _) = keys(&packs).unwrap();
        assert!(keys.iter().any(|k| k.decl.dimension_label.is_some()));
        for key in &keys {
            let names = selector_names(&parse(&key.signal).unwrap());
            let raw = names.iter().all(|n| !n.contains(':'));
            assert!(raw, "{}: {names:?}", key.name);
        }
    }
}
