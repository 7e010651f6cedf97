//! One shard: the text of a few tenants per family, kept as compressed pieces, and how a
//! shard is brought up to date when some of its tenants changed.
//!
//! Resolving a tenant costs about twice as much as rendering and compressing its text, so a
//! shard is not rendered from scratch for one changed tenant: only the changed tenants are
//! resolved and rendered, and only the families whose text they changed are rebuilt (a new
//! threshold value changes `user_threshold` and leaves the other six pieces as they were).
//! A family that is rebuilt gets its old text inflated and the unchanged tenants' lines
//! copied from it.

use std::collections::HashMap;
use std::hash::Hasher as _;

use chrono::{DateTime, Utc};
use dynalert_config::TenantEntry;
use dynalert_config::resolve_tenant;
use xxhash_rust::xxh3::Xxh3;

use crate::gzip::Piece;
use crate::text::{FAMILIES, render_tenant};

pub(crate) const FAMILY_COUNT: usize = FAMILIES.len();
/// Rough text size of one tenant per family, to size buffers up front.
const TYPICAL_BYTES_PER_TENANT: [usize; FAMILY_COUNT] = [3500, 2500, 100, 60, 70, 100, 80];

type Texts = [String; FAMILY_COUNT];
type Spans = [(usize, usize); FAMILY_COUNT];

/// What the cache remembers of a tenant: where its lines are in its shard's text. Whether its
/// inputs changed, or its time came, is the model diff's to say.
#[derive(Clone)]
pub(crate) struct TenantMemo {
    /// Hash of the tenant's lines, per family: tells which families a new rendering changed.
    hashes: [u64; FAMILY_COUNT],
    rows: usize,
    /// Byte range of the tenant's lines in its shard's text, per family.
    spans: Spans,
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
    /// Family pieces compressed again (the others were kept).
    pub pieces_compressed: usize,
}

/// The inputs of one shard's update.
pub(crate) struct ShardInputs<'a, 'm> {
    /// The shard's tenants now, in output order.
    pub members: Vec<ShardMember<'a>>,
    /// The shard's current text, when it was laid out by the same shard count (its tenants'
    /// memos then point into it); `None` renders every member.
    pub previous: Option<&'m Shard>,
    /// Tenants were added to or removed from the shard, so its text changes whatever the
    /// members render to.
    pub membership_changed: bool,
}

/// A tenant of a shard, and whether the model diff says its inputs changed.
pub(crate) struct ShardMember<'a> {
    pub name: &'a String,
    pub entry: &'a TenantEntry,
    pub changed: bool,
}

/// Brings one shard up to date: resolves and renders the members whose memo is stale, and
/// rebuilds the families whose text that changed.
pub(crate) fn update_shard<'a>(
    inputs: ShardInputs<'a, '_>,
    memos: &HashMap<String, TenantMemo>,
    now: DateTime<Utc>,
) -> ShardUpdate<'a> {
    match inputs.previous {
        Some(previous) => patch_shard(
            inputs.members,
            previous,
            inputs.membership_changed,
            memos,
            now,
        ),
        None => render_shard(inputs.members, now),
    }
}

/// Renders every member straight into the shard's text (a first render, or a new layout).
fn render_shard<'a>(members: Vec<ShardMember<'a>>, now: DateTime<Utc>) -> ShardUpdate<'a> {
    let mut texts: Texts =
        std::array::from_fn(|f| String::with_capacity(members.len() * TYPICAL_BYTES_PER_TENANT[f]));
    let tenants_rendered = members.len();
    let memos: Vec<(&String, TenantMemo)> = members
        .into_iter()
        .map(|m| (m.name, render_member(m.entry, &mut texts, now)))
        .collect();
    ShardUpdate {
        compressed: Some(Shard {
            families: texts
                .iter()
                .map(|t| Piece::compress(t.as_bytes()))
                .collect(),
            rows: memos.iter().map(|(_, m)| m.rows).sum(),
        }),
        memos,
        tenants_rendered,
        pieces_compressed: FAMILY_COUNT,
    }
}

/// Updates a shard laid out as before: stale members are rendered on their own, and a family
/// is rebuilt only when the membership changed or a rendering changed its lines.
fn patch_shard<'a>(
    members: Vec<ShardMember<'a>>,
    previous: &Shard,
    membership_changed: bool,
    memos: &HashMap<String, TenantMemo>,
    now: DateTime<Utc>,
) -> ShardUpdate<'a> {
    let members: Vec<Member> = members
        .into_iter()
        .map(|member| {
            let old = memos.get(member.name.as_str());
            let stale = member.changed || old.is_none();
            let new = stale.then(|| {
                let mut texts = Texts::default();
                (render_member(member.entry, &mut texts, now), texts)
            });
            Member {
                name: member.name,
                old,
                new,
            }
        })
        .collect();
    let changed: [bool; FAMILY_COUNT] = std::array::from_fn(|f| {
        membership_changed
            || members.iter().any(|m| {
                m.new
                    .as_ref()
                    .is_some_and(|(memo, _)| m.old.is_none_or(|o| o.hashes[f] != memo.hashes[f]))
            })
    });
    let mut spans: Vec<Spans> = members
        .iter()
        .map(|m| m.old.map_or([(0, 0); FAMILY_COUNT], |o| o.spans))
        .collect();
    let mut families = previous.families.clone();
    for f in (0..FAMILY_COUNT).filter(|&f| changed[f]) {
        let old =
            String::from_utf8(previous.families[f].decompress()).expect("rendered text is UTF-8");
        let mut text = String::with_capacity(old.len() + TYPICAL_BYTES_PER_TENANT[f]);
        for (member, span) in members.iter().zip(spans.iter_mut()) {
            let start = text.len();
            match (&member.new, member.old) {
                (Some((_, texts)), _) => text.push_str(&texts[f]),
                (None, Some(memo)) => text.push_str(&old[memo.spans[f].0..memo.spans[f].1]),
                (None, None) => unreachable!("a member without a fresh memo was rendered"),
            }
            span[f] = (start, text.len());
        }
        families[f] = Piece::compress(text.as_bytes());
    }
    let tenants_rendered = members.iter().filter(|m| m.new.is_some()).count();
    let any_changed = changed.contains(&true);
    let memos: Vec<(&String, TenantMemo)> = members
        .into_iter()
        .zip(spans)
        .map(|(member, spans)| {
            let memo = match member.new {
                Some((memo, _)) => memo,
                None => member
                    .old
                    .expect("a member without a fresh memo was rendered")
                    .clone(),
            };
            (member.name, TenantMemo { spans, ..memo })
        })
        .collect();
    ShardUpdate {
        compressed: any_changed.then(|| Shard {
            families,
            rows: memos.iter().map(|(_, m)| m.rows).sum(),
        }),
        memos,
        tenants_rendered,
        pieces_compressed: changed.iter().filter(|c| **c).count(),
    }
}

/// A tenant of a shard being patched: its memo, and its new rendering (in texts of its own)
/// when the memo was not fresh.
struct Member<'a, 'm> {
    name: &'a String,
    old: Option<&'m TenantMemo>,
    new: Option<(TenantMemo, Texts)>,
}

/// Resolves one tenant at `now` and appends its lines to `texts`.
fn render_member(entry: &TenantEntry, texts: &mut Texts, now: DateTime<Utc>) -> TenantMemo {
    let resolved = resolve_tenant(entry, now);
    let starts: [usize; FAMILY_COUNT] = std::array::from_fn(|f| texts[f].len());
    render_tenant(&resolved, texts);
    // The tenant's own text is what was appended; its hashes tell which families changed.
    let hashes = std::array::from_fn(|f| {
        let mut h = Xxh3::new();
        h.update(&texts[f].as_bytes()[starts[f]..]);
        h.finish()
    });
    TenantMemo {
        hashes,
        rows: resolved.rows.len(),
        spans: std::array::from_fn(|f| (starts[f], texts[f].len())),
    }
}
