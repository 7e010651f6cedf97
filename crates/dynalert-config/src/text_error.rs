//! Why the text of one scalar is not a valid value. The parsers of single values return these;
//! the document parser adds the file, line and column, and the message is what users read.

use thiserror::Error;

use crate::value::Severity;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TextError {
    #[error("unknown severity {0:?}: use critical, warning or info")]
    Severity(String),
    #[error("{0:?} is not a number (expected e.g. 80, 0.5 or \"disable\")")]
    Number(String),
    #[error("{text:?} is not an RFC 3339 time like \"2026-12-01T00:00:00Z\" ({reason})")]
    Instant { text: String, reason: String },
    #[error("window {0:?} must look like \"HH:MM-HH:MM\" (e.g. \"01:00-05:00\")")]
    WindowShape(String),
    #[error("window {0:?} is empty: start and end are the same time")]
    WindowEmpty(String),
    #[error("unknown timezone {0:?}: use an IANA name such as \"Europe/Berlin\" or \"UTC\"")]
    Timezone(String),
    #[error("{0:?} must be enable or disable")]
    OnOff(String),
    #[error("silent mode {0:?} must be warning, critical, all or disable")]
    SilentMode(String),
    /// The key's first 40 characters.
    #[error("key {0:?}… is longer than 1024 characters")]
    KeyTooLong(String),
    #[error(
        "invalid key {0:?}: keys are lowercase letters, digits and '_', starting with a letter"
    )]
    KeyName(String),
    #[error("in dimensional key {key:?}: {reason}")]
    Dimensions { key: String, reason: DimensionError },
}

/// What is wrong between the braces of a dimensional key.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DimensionError {
    #[error("expected {{label='value', ...}}")]
    NotBraced,
    #[error("expected '=' or '=~' after label {0:?}")]
    NoOperator(String),
    #[error("label values must be quoted")]
    Unquoted,
    #[error("unterminated quoted value")]
    Unterminated,
    #[error(
        "{0:?} cannot be a dimension label (must be a label name other than tenant, component, metric, severity, le, quantile)"
    )]
    ReservedLabel(String),
    #[error("label {0:?} given twice")]
    Repeated(String),
    #[error("no labels between the braces")]
    Empty,
}

/// Why a tenant's key does not fit the platform in force.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error(
        "unknown key {name:?}{suggestion}; keys must be declared in defaults or optional of a platform file"
    )]
    Unknown { name: String, suggestion: String },
    #[error(
        "dimensional key on unknown base key {name:?}{suggestion}; keys must be declared in defaults or optional of a platform file"
    )]
    UnknownBase { name: String, suggestion: String },
    #[error("{name:?} is the critical tier; it cannot carry severity {severity}")]
    TierSeverity { name: String, severity: Severity },
    /// Two keys of one layer (one tenant, one `defaults` block, one profile) would serve one
    /// series: only one row can be exported, so neither is chosen silently.
    #[error(
        "serves the same series as key {other:?} (line {line}, column {col}): {series}; keep only one of the two"
    )]
    SameSeries {
        other: String,
        line: u32,
        col: u32,
        series: String,
    },
}
