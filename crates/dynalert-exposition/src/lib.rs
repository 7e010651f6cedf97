//! Turns the resolved threshold model into `/metrics` text, fast.
//!
//! Tenants are grouped into shards; each shard keeps its text per family as a pre-compressed
//! [`gzip::Piece`]. An update re-resolves only tenants whose document or platform changed or
//! whose time-dependent rows (schedules, expiries) are due, and recompresses only the shards
//! whose text actually changed. Serving is then a matter of handing out shared byte buffers.

pub mod gzip;
pub mod text;

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use dynalert_config::doc::TenantDoc;
use dynalert_config::resolve::resolve_tenant;
use dynalert_config::{EffectivePlatform, Model, TenantEntry};

use gzip::Piece;
use rayon::prelude::*;
use text::{FAMILIES, family_header, render_tenant};
use xxhash_rust::xxh3::Xxh3;

const FAMILY_COUNT: usize = FAMILIES.len();
/// Below this many tenants one shard is cheap enough and keeps the output sorted by tenant.
const SHARDING_THRESHOLD: usize = 256;
const SHARDS: usize = 64;
/// Rough text size of one tenant per family, to size buffers up front.
const TYPICAL_BYTES_PER_TENANT: [usize; FAMILY_COUNT] = [3500, 2500, 100, 60, 70, 100, 80];

/// What the cache remembers of a tenant to know whether it must be rendered again. Holding
/// the `Arc`s (not raw pointers) keeps identity comparisons sound.
struct TenantMemo {
    doc: Arc<TenantDoc>,
    platform: Arc<EffectivePlatform>,
    valid_until: Option<DateTime<Utc>>,
    text_hash: u64,
}

impl TenantMemo {
    /// Same inputs, and no schedule boundary or expiry passed since it was rendered.
    fn is_fresh(&self, entry: &TenantEntry, now: DateTime<Utc>) -> bool {
        Arc::ptr_eq(&self.doc, &entry.doc)
            && Arc::ptr_eq(&self.platform, &entry.platform)
            && self.valid_until.is_none_or(|u| now < u)
    }
}

#[derive(Clone, Default)]
struct Shard {
    families: Vec<Piece>,
    rows: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RenderStats {
    pub tenants_rendered: usize,
    pub shards_rebuilt: usize,
}

/// The rendering cache. Call [`Exposition::update`] after every reload and when
/// [`Exposition::next_due`] has passed; hand [`Exposition::snapshot`] to readers.
pub struct Exposition {
    memos: HashMap<String, TenantMemo>,
    shard_count: usize,
    shards: Vec<Shard>,
    headers: Vec<Piece>,
    snapshot: Arc<Snapshot>,
    next_due: Option<DateTime<Utc>>,
}

impl Default for Exposition {
    fn default() -> Self {
        Self::new()
    }
}

impl Exposition {
    pub fn new() -> Self {
        let headers: Vec<Piece> = (0..FAMILY_COUNT)
            .map(|i| Piece::compress(family_header(i).as_bytes()))
            .collect();
        let empty_shard = Shard {
            families: vec![Piece::compress(b""); FAMILY_COUNT],
            rows: 0,
        };
        let mut exposition = Exposition {
            memos: HashMap::new(),
            shard_count: 1,
            shards: vec![empty_shard],
            headers,
            snapshot: Arc::new(Snapshot::default()),
            next_due: None,
        };
        exposition.publish();
        exposition
    }

    /// Brings the rendering up to date with `model` at `now`.
    pub fn update(&mut self, model: &Arc<Model>, now: DateTime<Utc>) -> RenderStats {
        let shard_count = if model.tenants.len() < SHARDING_THRESHOLD {
            1
        } else {
            SHARDS
        };
        // Shards whose membership changed must be rebuilt; shards holding a tenant whose
        // inputs changed or whose time-dependent rows are due must be rendered, and are
        // rebuilt only if some text actually changed.
        let mut rebuild = vec![shard_count != self.shard_count; shard_count];
        let mut render = rebuild.clone();
        if shard_count != self.shard_count {
            self.shard_count = shard_count;
            self.shards = vec![Shard::default(); shard_count];
        }
        self.memos.retain(|name, _| {
            let kept = model.tenants.contains_key(name);
            if !kept {
                rebuild[shard_of(name, shard_count)] = true;
            }
            kept
        });
        let mut members: Vec<Vec<(&String, &TenantEntry)>> = vec![Vec::new(); shard_count];
        for (name, entry) in &model.tenants {
            let shard = shard_of(name, shard_count);
            members[shard].push((name, entry));
            match self.memos.get(name) {
                None => rebuild[shard] = true,
                Some(m) if !m.is_fresh(entry, now) => render[shard] = true,
                Some(_) => {}
            }
        }
        // Render, compare and compress each shard on the worker that rendered it, so only
        // one shard's plain text per thread is alive at a time (a 5,000-tenant body is ~35 MB
        // of text but ~3 MB compressed).
        let memos = &self.memos;
        let rendered: Vec<ShardUpdate> = members
            .into_par_iter()
            .enumerate()
            .filter(|(i, _)| rebuild[*i] || render[*i])
            .map(|(i, tenants)| {
                let shard = render_shard(&tenants, now);
                let changed = rebuild[i]
                    || shard.memos.iter().any(|(name, m)| {
                        memos
                            .get(*name)
                            .is_none_or(|old| old.text_hash != m.text_hash)
                    });
                let compressed = changed.then(|| shard.compress());
                ShardUpdate {
                    index: i,
                    memos: shard.memos,
                    compressed,
                }
            })
            .collect();
        let mut stats = RenderStats::default();
        for ShardUpdate {
            index,
            memos,
            compressed,
        } in rendered
        {
            stats.tenants_rendered += memos.len();
            for (name, memo) in memos {
                self.memos.insert(name.clone(), memo);
            }
            if let Some(shard) = compressed {
                stats.shards_rebuilt += 1;
                self.shards[index] = shard;
            }
        }
        self.next_due = self.memos.values().filter_map(|m| m.valid_until).min();
        if stats.shards_rebuilt > 0 {
            self.publish();
        }
        stats
    }

    fn publish(&mut self) {
        let mut pieces = Vec::with_capacity(FAMILY_COUNT * (self.shard_count + 1));
        for family in 0..FAMILY_COUNT {
            pieces.push(self.headers[family].clone());
            pieces.extend(self.shards.iter().map(|s| s.families[family].clone()));
        }
        self.snapshot = Arc::new(Snapshot {
            pieces,
            threshold_series: self.shards.iter().map(|s| s.rows).sum(),
            tenants: self.memos.len(),
        });
    }

    /// Earliest instant at which a time-dependent row changes.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.next_due
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.clone()
    }
}

fn shard_of(name: &str, shard_count: usize) -> usize {
    if shard_count == 1 {
        return 0;
    }
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    (h.finish() % shard_count as u64) as usize
}

/// What rendering one shard produced: fresh memos, and new pieces if its text changed.
struct ShardUpdate<'a> {
    index: usize,
    memos: Vec<(&'a String, TenantMemo)>,
    compressed: Option<Shard>,
}

/// One shard's text, before compression, with what was learnt about each tenant.
struct RenderedShard<'a> {
    texts: [String; FAMILY_COUNT],
    rows: usize,
    memos: Vec<(&'a String, TenantMemo)>,
}

impl RenderedShard<'_> {
    fn compress(&self) -> Shard {
        Shard {
            families: self
                .texts
                .iter()
                .map(|t| Piece::compress(t.as_bytes()))
                .collect(),
            rows: self.rows,
        }
    }
}

fn render_shard<'a>(
    tenants: &[(&'a String, &TenantEntry)],
    now: DateTime<Utc>,
) -> RenderedShard<'a> {
    let mut texts: [String; FAMILY_COUNT] = Default::default();
    // Typical sizes per tenant (30 keys): growing the buffers by doubling cost more than
    // formatting them.
    for (text, per_tenant) in texts.iter_mut().zip(TYPICAL_BYTES_PER_TENANT) {
        text.reserve(tenants.len() * per_tenant);
    }
    let mut rows = 0;
    let mut memos = Vec::with_capacity(tenants.len());
    for (name, entry) in tenants {
        let resolved = resolve_tenant(entry, now);
        rows += resolved.rows.len();
        let starts: [usize; FAMILY_COUNT] = std::array::from_fn(|f| texts[f].len());
        render_tenant(&resolved, &mut texts);
        // The tenant's own text is what was appended; its hash tells whether it changed.
        let mut h = Xxh3::new();
        for (text, start) in texts.iter().zip(starts) {
            h.update(&text.as_bytes()[start..]);
            h.update(&[0xff]); // family separator
        }
        let memo = TenantMemo {
            doc: entry.doc.clone(),
            platform: entry.platform.clone(),
            valid_until: resolved.valid_until,
            text_hash: h.finish(),
        };
        memos.push((*name, memo));
    }
    RenderedShard { texts, rows, memos }
}

/// An immutable rendering, shared by concurrent scrapes.
#[derive(Default)]
pub struct Snapshot {
    pieces: Vec<Piece>,
    threshold_series: usize,
    tenants: usize,
}

impl Snapshot {
    /// Text format of every threshold family, then `tail`, as chunks to send in order.
    pub fn plain_body(&self, tail: &[u8]) -> Vec<Bytes> {
        let mut out: Vec<Bytes> = self
            .pieces
            .iter()
            .filter(|p| p.len > 0)
            .map(|p| Bytes::from(p.decompress()))
            .collect();
        out.push(Bytes::copy_from_slice(tail));
        out
    }

    /// Length of [`Snapshot::plain_body`] without building it.
    pub fn plain_len(&self, tail: &[u8]) -> usize {
        self.pieces.iter().map(|p| p.len as usize).sum::<usize>() + tail.len()
    }

    /// [`Snapshot::plain_body`], decompressed piece by piece as the consumer pulls, so a
    /// plain-text scrape holds one piece in memory at a time rather than the whole body.
    pub fn plain_stream(
        self: Arc<Self>,
        tail: Bytes,
    ) -> impl Iterator<Item = Bytes> + Send + 'static {
        (0..self.pieces.len())
            .filter_map(move |i| {
                let piece = &self.pieces[i];
                (piece.len > 0).then(|| Bytes::from(piece.decompress()))
            })
            .chain(std::iter::once(tail))
    }

    /// The same content as one gzip member.
    pub fn gzip_body(&self, tail: &[u8]) -> Vec<Bytes> {
        gzip::gzip_member(self.pieces.iter().filter(|p| p.len > 0), tail)
    }

    pub fn threshold_series(&self) -> usize {
        self.threshold_series
    }

    pub fn tenants(&self) -> usize {
        self.tenants
    }

    /// The whole plain text as one string (tests, `simulate`).
    pub fn to_text(&self) -> String {
        String::from_utf8(self.plain_body(b"").concat()).expect("rendered text is UTF-8")
    }
}

/// Renders a model once at `at` (for tools that need the exact `/metrics` lines).
pub fn render_once(model: &Arc<Model>, at: DateTime<Utc>) -> String {
    let mut e = Exposition::new();
    e.update(model, at);
    e.snapshot().to_text()
}
