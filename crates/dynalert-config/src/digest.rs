//! Canonical digests of tenants and platforms: a 128-bit XXH3 over what they configure, never
//! over positions, file names, comments or formatting. Computed once per parsed document, so
//! the configuration hash of a large tree costs nothing on reload. (XXH3 rather than SHA-256
//! here: the digest guards against accidental change, not against an attacker, and SHA-256
//! over 5,000 tenants cost a seventh of a cold load.)
//!
//! The bytes hashed are written out explicitly by [`Canon`] (fixed-width little-endian numbers,
//! length-prefixed strings, one tag byte per variant), never through `std::hash::Hash`, whose
//! output may change between Rust releases: two replicas built by different toolchains must
//! agree on the hash they export.

use chrono::{DateTime, Utc};
use xxhash_rust::xxh3::Xxh3;

use crate::value::{Schedule, Setting, Severity, Threshold};

/// Digests are 16 bytes: XXH3-128.
pub type Digest = [u8; 16];

/// Writes values in their canonical byte form into a running digest.
pub struct Canon(Xxh3);

impl Canon {
    /// The digest of what `feed` writes.
    pub fn digest(feed: impl FnOnce(&mut Canon)) -> Digest {
        let mut canon = Canon(Xxh3::new());
        feed(&mut canon);
        canon.0.digest128().to_le_bytes()
    }

    pub fn tag(&mut self, tag: u8) -> &mut Self {
        self.0.update(&[tag]);
        self
    }

    pub fn u64(&mut self, n: u64) -> &mut Self {
        self.0.update(&n.to_le_bytes());
        self
    }

    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.tag(u8::from(b))
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.0.update(s.as_bytes());
        self
    }

    /// Absent and present values differ even when the present one writes nothing.
    pub fn opt<T>(&mut self, value: Option<T>, feed: impl FnOnce(&mut Self, T)) -> &mut Self {
        match value {
            None => self.tag(0),
            Some(v) => {
                self.tag(1);
                feed(self, v);
                self
            }
        }
    }

    /// A sequence: its length, then each item.
    pub fn seq<T>(
        &mut self,
        items: impl ExactSizeIterator<Item = T>,
        mut feed: impl FnMut(&mut Self, T),
    ) -> &mut Self {
        self.u64(items.len() as u64);
        for item in items {
            feed(self, item);
        }
        self
    }

    pub fn strs<'a>(&mut self, items: impl ExactSizeIterator<Item = &'a String>) -> &mut Self {
        self.seq(items, |c, s| {
            c.str(s);
        })
    }

    pub fn instant(&mut self, at: DateTime<Utc>) -> &mut Self {
        self.u64(at.timestamp() as u64)
            .u64(u64::from(at.timestamp_subsec_nanos()))
    }

    pub fn severity(&mut self, severity: Severity) -> &mut Self {
        self.tag(match severity {
            Severity::Critical => 1,
            Severity::Warning => 2,
            Severity::Info => 3,
        })
    }

    pub fn setting(&mut self, setting: &Setting) -> &mut Self {
        match setting {
            Setting::Value { value, severity } => {
                self.tag(1).u64(value.to_bits()).opt(*severity, |c, s| {
                    c.severity(s);
                })
            }
            Setting::Disabled => self.tag(2),
        }
    }

    pub fn threshold(&mut self, t: &Threshold) -> &mut Self {
        self.setting(&t.base)
            .opt(t.schedule(), |c, s| {
                c.schedule(s);
            })
            .opt(t.expires(), |c, at| {
                c.instant(at);
            })
            .opt(t.reason(), |c, r| {
                c.str(r);
            })
    }

    fn schedule(&mut self, s: &Schedule) -> &mut Self {
        self.str(s.timezone.name()).seq(s.overrides.iter(), |c, o| {
            c.u64(u64::from(o.window.start))
                .u64(u64::from(o.window.end))
                .tag(o.days.bits())
                .setting(&o.setting);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The canonical form is a contract: these bytes, hashed by XXH3-128, on any toolchain.
    #[test]
    fn canonical_bytes_are_fixed() {
        let digest = Canon::digest(|c| {
            c.str("db-a").setting(&Setting::Value {
                value: 70.0,
                severity: Some(Severity::Critical),
            });
        });
        let mut bytes = Vec::new();
        bytes.extend(4u64.to_le_bytes());
        bytes.extend(b"db-a");
        bytes.push(1);
        bytes.extend(70.0f64.to_bits().to_le_bytes());
        bytes.extend([1, 1]);
        assert_eq!(
            digest,
            xxhash_rust::xxh3::xxh3_128(&bytes).to_le_bytes(),
            "the canonical byte form changed"
        );
    }

    #[test]
    fn absent_and_empty_differ() {
        let none = Canon::digest(|c| {
            c.opt(None::<&str>, |c, s| {
                c.str(s);
            });
        });
        let empty = Canon::digest(|c| {
            c.opt(Some(""), |c, s| {
                c.str(s);
            });
        });
        assert_ne!(none, empty);
    }
}
