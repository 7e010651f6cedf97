//! One shard: the text of a few tenants per family, kept as compressed pieces, and how a
//! shard is brought up to date when some of its tenants changed.
//!
//! Resolving a tenant costs about twice as much as rendering and compressing its text, so a
//! shard is not rendered from scratch for one changed tenant: its old text is inflated, the
//! unchanged tenants' lines are copied from it, and only the changed tenants are resolved.

use std::collections::HashMap;
use std::hash::Hasher as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use dynalert_config::doc::TenantDoc;
use dynalert_config::resolve::resolve_tenant;
use dynalert_config::{EffectivePlatform, TenantEntry};
use xxhash_rust::xxh3::Xxh3;

use crate::gzip::Piece;
use crate::text::{FAMILIES, render_tenant};

pub(crate) const FAMILY_COUNT: usize = FAMILIES.len();
/// Rough text size of one tenant per family, to size buffers up front.
const TYPICAL_BYTES_PER_TENANT: [usize; FAMILY_COUNT] = [3500, 2500, 100, 60, 70, 100, 80];

/// What the cache remembers of a tenant: whether it must be resolved again, and where its
/// lines are in its shard's text. Holding the `Arc`s (not raw pointers) keeps identity
/// comparisons sound.
#[derive(Clone)]
pub(crate) struct TenantMemo {
    doc: Arc<TenantDoc>,
    platform: Arc<EffectivePlatform>,
    pub valid_until: Option<DateTime<Utc>>,
    text_hash: u64,
    rows: usize,
    /// Byte range of the tenant's lines in its shard's text, per family.
    spans: [(usize, usize); FAMILY_COUNT],
}

impl TenantMemo {
    /// Same inputs, and no schedule boundary or expiry passed since it was rendered.
    pub fn is_fresh(&self, entry: &TenantEntry, now: DateTime<Utc>) -> bool {
        Arc::ptr_eq(&self.doc, &entry.doc)
            && Arc::ptr_eq(&self.platform, &entry.platform)
            && self.valid_until.is_none_or(|u| now < u)
    }
}

#[derive(Clone)]
pub(crate) struct Shard {
    pub families: Vec<Piece>,
    pub rows: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            families: vec![Piece::compress(b""); FAMILY_COUNT],
            rows: 0,
        }
    }
}

/// What bringing one shard up to date produced: fresh memos for its tenants, new pieces if
/// its text changed, and how many tenants had to be resolved.
pub(crate) struct ShardUpdate<'a> {
    pub memos: Vec<(&'a String, TenantMemo)>,
    pub compressed: Option<Shard>,
    pub tenants_rendered: usize,
}

/// The inputs of one shard's update.
pub(crate) struct ShardInputs<'a, 'm> {
    /// The shard's tenants now, in output order.
    pub members: Vec<(&'a String, &'a TenantEntry)>,
    /// The shard's current text, when it was laid out by the same shard count (its tenants'
    /// memos then point into it); `None` renders every member.
    pub previous: Option<&'m Shard>,
    /// Tenants were added to or removed from the shard, so its text changes whatever the
    /// members render to.
    pub membership_changed: bool,
}

/// Renders the shard's text from its members, copying the lines of tenants whose memo is
/// fresh from the previous text, and compresses it if it changed.
pub(crate) fn update_shard<'a>(
    inputs: ShardInputs<'a, '_>,
    memos: &HashMap<String, TenantMemo>,
    now: DateTime<Utc>,
) -> ShardUpdate<'a> {
    let previous = inputs.previous.map(|shard| -> [String; FAMILY_COUNT] {
        std::array::from_fn(|f| {
            String::from_utf8(shard.families[f].decompress()).expect("rendered text is UTF-8")
        })
    });
    let mut texts: [String; FAMILY_COUNT] = std::array::from_fn(|f| {
        let expected = previous
            .as_ref()
            .map_or(inputs.members.len() * TYPICAL_BYTES_PER_TENANT[f], |p| {
                p[f].len() + TYPICAL_BYTES_PER_TENANT[f]
            });
        String::with_capacity(expected)
    });
    let mut changed = inputs.membership_changed;
    let mut rendered = 0;
    let mut fresh_memos = Vec::with_capacity(inputs.members.len());
    for (name, entry) in inputs.members {
        let known = memos.get(name.as_str());
        let starts: [usize; FAMILY_COUNT] = std::array::from_fn(|f| texts[f].len());
        let memo = match (known, &previous) {
            (Some(memo), Some(old)) if memo.is_fresh(entry, now) => {
                for (f, text) in texts.iter_mut().enumerate() {
                    let (start, end) = memo.spans[f];
                    text.push_str(&old[f][start..end]);
                }
                TenantMemo {
                    spans: std::array::from_fn(|f| (starts[f], texts[f].len())),
                    ..memo.clone()
                }
            }
            _ => {
                rendered += 1;
                let memo = render_member(entry, &mut texts, now);
                changed |= known.is_none_or(|k| k.text_hash != memo.text_hash);
                memo
            }
        };
        fresh_memos.push((name, memo));
    }
    let compressed = changed.then(|| Shard {
        families: texts
            .iter()
            .map(|t| Piece::compress(t.as_bytes()))
            .collect(),
        rows: fresh_memos.iter().map(|(_, m)| m.rows).sum(),
    });
    ShardUpdate {
        memos: fresh_memos,
        compressed,
        tenants_rendered: rendered,
    }
}

/// Resolves one tenant at `now` and appends its lines to `texts`.
fn render_member(
    entry: &TenantEntry,
    texts: &mut [String; FAMILY_COUNT],
    now: DateTime<Utc>,
) -> TenantMemo {
    let resolved = resolve_tenant(entry, now);
    let starts: [usize; FAMILY_COUNT] = std::array::from_fn(|f| texts[f].len());
    render_tenant(&resolved, texts);
    // The tenant's own text is what was appended; its hash tells whether it changed.
    let mut h = Xxh3::new();
    for (text, start) in texts.iter().zip(starts) {
        h.update(&text.as_bytes()[start..]);
        h.update(&[0xff]); // family separator
    }
    TenantMemo {
        doc: entry.doc.clone(),
        platform: entry.platform.clone(),
        valid_until: resolved.valid_until,
        text_hash: h.finish(),
        rows: resolved.rows.len(),
        spans: std::array::from_fn(|f| (starts[f], texts[f].len())),
    }
}
