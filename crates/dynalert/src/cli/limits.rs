//! The bounds on one tenant's document, shared by `serve` and the commands that check a tree
//! (`lint`, `show`), so a tree `lint` passes is one `serve` accepts.

use dynalert_config::Limits;

#[derive(clap::Args, Clone, Copy)]
pub struct LimitArgs {
    /// Most keys one tenant may set (dimensional rows count apart); a document over it is
    /// refused (API: 422; conf.d: the file's last good version stays served).
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.tenant_keys)]
    pub max_tenant_keys: usize,
    /// Most dimensional rows (`key{label='value'}`) one tenant may set.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.tenant_dimension_rows)]
    pub max_tenant_dimension_rows: usize,
}

impl LimitArgs {
    pub fn limits(self) -> Limits {
        Limits {
            tenant_keys: self.max_tenant_keys,
            tenant_dimension_rows: self.max_tenant_dimension_rows,
        }
    }
}
