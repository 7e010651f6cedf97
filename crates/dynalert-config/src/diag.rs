//! Diagnostics: every problem the loader finds, with the file, line and column it came from.

use std::fmt;

use serde::Serialize;

use crate::yaml::Pos;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "error",
            Level::Warning => "warning",
        })
    }
}

/// One finding. `file` is relative to the conf.d root, with `/` separators.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub level: Level,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub message: String,
}

impl Diagnostic {
    pub fn error(file: &str, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_string(),
            line: pos.line,
            col: pos.col,
            level: Level::Error,
            tenant: None,
            key: None,
            message: message.into(),
        }
    }

    pub fn warning(file: &str, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            level: Level::Warning,
            ..Diagnostic::error(file, pos, message)
        }
    }

    pub fn for_tenant(mut self, tenant: &str) -> Self {
        self.tenant = Some(tenant.to_string());
        self
    }

    pub fn for_key(mut self, key: &str) -> Self {
        self.key = Some(key.to_string());
        self
    }

    pub fn is_error(&self) -> bool {
        self.level == Level::Error
    }
}

/// `file:line:col: severity: message`, the format editors and CI logs understand.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: ",
            self.file, self.line, self.col, self.level
        )?;
        match (&self.tenant, &self.key) {
            (Some(t), Some(k)) => write!(f, "tenant {t:?}, key {k:?}: ")?,
            (Some(t), None) => write!(f, "tenant {t:?}: ")?,
            _ => {}
        }
        f.write_str(&self.message)
    }
}
