//! Bounds on what one tenant may configure, so that no tenant's document can make `/metrics`,
//! the API or the reload slow for everyone. A document over a limit is an error like any
//! other: a write is refused, a file falls back to its last good version.

use crate::diag::Diagnostic;
use crate::doc::ParsedFile;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Keys one tenant sets itself (plain keys and tiers; dimensional rows count apart).
    pub tenant_keys: usize,
    /// Dimensional rows (`key{label='value'}`) of one tenant.
    pub tenant_dimension_rows: usize,
}

impl Limits {
    /// Room for every pack key with both tiers many times over, and for a few thousand
    /// queues, indexes or containers with their own thresholds.
    pub const DEFAULT: Limits = Limits {
        tenant_keys: 1_000,
        tenant_dimension_rows: 5_000,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Rejects `file` when one of its tenants sets more than `limits` allow, with an error at the
/// tenant naming the count and the limit.
pub(crate) fn enforce(file: &mut ParsedFile, limits: &Limits) {
    let mut found = Vec::new();
    for tenant in &file.tenants {
        let dimensional = tenant
            .thresholds
            .iter()
            .filter(|t| !t.key.dims().is_empty())
            .count();
        let plain = tenant.thresholds.len() - dimensional;
        let over = [
            (plain, limits.tenant_keys, "keys", "--max-tenant-keys"),
            (
                dimensional,
                limits.tenant_dimension_rows,
                "dimensional rows",
                "--max-tenant-dimension-rows",
            ),
        ];
        for (count, limit, what, option) in over {
            if count > limit {
                found.push(
                    Diagnostic::error(
                        &file.path,
                        tenant.pos,
                        format!(
                            "tenant {:?} sets {count} {what}, over the limit of {limit} ({option})",
                            tenant.name
                        ),
                    )
                    .for_tenant(&tenant.name),
                );
            }
        }
    }
    if !found.is_empty() {
        file.diagnostics.extend(found);
        file.rejected = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_file;

    fn tenant_with(keys: usize, rows: usize) -> String {
        let mut text = String::from("tenants:\n  big:\n");
        for i in 0..keys {
            text.push_str(&format!("    key_{i}: 1\n"));
        }
        for i in 0..rows {
            text.push_str(&format!("    \"key_0{{queue='q{i}'}}\": 1\n"));
        }
        text
    }

    #[test]
    fn a_tenant_over_a_limit_rejects_its_file_and_names_the_limit() {
        let limits = Limits {
            tenant_keys: 3,
            tenant_dimension_rows: 2,
        };
        let mut at_limit = parse_file("big.yaml", &tenant_with(3, 2));
        enforce(&mut at_limit, &limits);
        assert!(!at_limit.rejected, "{:?}", at_limit.diagnostics);
        let mut over = parse_file("big.yaml", &tenant_with(4, 3));
        enforce(&mut over, &limits);
        assert!(over.rejected);
        let messages: Vec<&str> = over
            .diagnostics
            .iter()
            .map(|d| d.message.as_str())
            .collect();
        assert_eq!(
            messages,
            [
                "tenant \"big\" sets 4 keys, over the limit of 3 (--max-tenant-keys)",
                "tenant \"big\" sets 3 dimensional rows, over the limit of 2 (--max-tenant-dimension-rows)",
            ]
        );
    }
}
