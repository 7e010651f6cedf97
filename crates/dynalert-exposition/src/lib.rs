//! Turns the resolved threshold model into `/metrics` text, fast.
//!
//! Tenants are grouped into shards; each shard keeps its text per family as a pre-compressed
//! [`gzip::Piece`]. An update re-resolves only tenants whose document or platform changed or
//! whose time-dependent rows (schedules, expiries) are due, and recompresses only the shards
//! whose text actually changed. Serving is then a matter of handing out shared byte buffers.

pub mod gzip;
mod shard;
pub mod text;

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use dynalert_config::{Model, ModelDiff};

use gzip::Piece;
use rayon::prelude::*;
use shard::{FAMILY_COUNT, Shard, ShardInputs, ShardMember, ShardUpdate, TenantMemo, update_shard};
use text::family_header;

/// Tenants per shard aimed at (a shard holds up to this many, and more than half). A write
/// recompresses its tenant's whole shard; fewer tenants per shard means more, smaller gzip
/// pieces: a worse compression ratio and more pieces to stitch per scrape.
const TENANTS_PER_SHARD: usize = 8;
/// Up to this many tenants one shard is cheap enough and keeps the output sorted by tenant.
const SINGLE_SHARD_UP_TO: usize = 2 * TENANTS_PER_SHARD;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RenderStats {
    /// Tenants resolved and rendered again (the others' lines were reused).
    pub tenants_rendered: usize,
    pub shards_rebuilt: usize,
    /// Family pieces of those shards compressed again (a shard has one per family).
    pub pieces_compressed: usize,
}

/// The rendering cache. Call [`Exposition::update`] with every new model and the diff that
/// produced it, and with the tenants whose time came (the diff's `due`, from a
/// [`dynalert_config::Timeline`]); hand [`Exposition::snapshot`] to readers.
pub struct Exposition {
    memos: HashMap<String, TenantMemo>,
    shards: Vec<Shard>,
    headers: Vec<Piece>,
    snapshot: Arc<Snapshot>,
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
        let mut exposition = Exposition {
            memos: HashMap::new(),
            shards: vec![Shard::default()],
            headers,
            snapshot: Arc::new(Snapshot::default()),
        };
        exposition.publish();
        exposition
    }

    /// Brings the rendering up to date with `model` at `now`: the tenants `diff` names are
    /// rendered again, and those whose time-dependent rows are due. Every model the rendering
    /// has not seen must come with the diff from the last one it saw.
    pub fn update(&mut self, model: &Model, diff: &ModelDiff, now: DateTime<Utc>) -> RenderStats {
        let shard_count = shard_count_for(model.tenants.len(), self.shards.len());
        let relayout = shard_count != self.shards.len();
        if relayout {
            self.shards = vec![Shard::default(); shard_count];
        }
        let mut inputs: Vec<ShardInputs> = self
            .shards
            .iter()
            .map(|shard| ShardInputs {
                members: Vec::new(),
                previous: (!relayout).then_some(shard),
                membership_changed: relayout,
            })
            .collect();
        // A shard needs work when its membership changed, or one of its tenants' inputs
        // changed or has time-dependent rows that are due.
        let mut needs_work = vec![relayout; shard_count];
        let mut known = 0;
        for (name, entry) in &model.tenants {
            let shard = shard_of(name, shard_count);
            let changed = diff.touches(name);
            inputs[shard].members.push(ShardMember {
                name,
                entry,
                changed,
            });
            match self.memos.get(name) {
                None => {
                    inputs[shard].membership_changed = true;
                    needs_work[shard] = true;
                }
                Some(_) => {
                    known += 1;
                    needs_work[shard] |= changed;
                }
            }
        }
        // Every remembered tenant still in the model was counted: any other was removed.
        let removed = known < self.memos.len();
        if removed {
            for name in self.memos.keys() {
                if !model.tenants.contains_key(name) {
                    let shard = shard_of(name, shard_count);
                    inputs[shard].membership_changed = true;
                    needs_work[shard] = true;
                }
            }
        }
        // Each shard is rendered, compared and compressed on one worker, so only one shard's
        // plain text per thread is alive at a time (a 5,000-tenant body is ~35 MB of text but
        // ~3 MB compressed).
        let memos = &self.memos;
        let updates: Vec<(usize, ShardUpdate)> = inputs
            .into_par_iter()
            .enumerate()
            .filter(|(i, _)| needs_work[*i])
            .map(|(i, shard)| (i, update_shard(shard, memos, now)))
            .collect();
        if removed {
            self.memos
                .retain(|name, _| model.tenants.contains_key(name));
        }
        let mut stats = RenderStats::default();
        for (index, update) in updates {
            stats.tenants_rendered += update.tenants_rendered;
            stats.pieces_compressed += update.pieces_compressed;
            for (name, memo) in update.memos {
                self.memos.insert(name.clone(), memo);
            }
            if let Some(shard) = update.compressed {
                stats.shards_rebuilt += 1;
                self.shards[index] = shard;
            }
        }
        if stats.shards_rebuilt > 0 {
            self.publish();
        }
        stats
    }

    fn publish(&mut self) {
        let mut pieces = Vec::with_capacity(FAMILY_COUNT * (self.shards.len() + 1));
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

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.clone()
    }
}

/// How many shards `tenants` tenants get, given the current count. Changing the count rebuilds
/// every shard, so the count stays put until shards hold a quarter or twice the tenants aimed
/// at: a tenant added and removed at a boundary does not rebuild everything each time.
fn shard_count_for(tenants: usize, current: usize) -> usize {
    if tenants <= SINGLE_SHARD_UP_TO {
        return 1;
    }
    let per_shard = tenants.div_ceil(current);
    if current > 1 && (TENANTS_PER_SHARD / 4..=TENANTS_PER_SHARD * 2).contains(&per_shard) {
        return current;
    }
    (tenants / TENANTS_PER_SHARD).next_power_of_two()
}

fn shard_of(name: &str, shard_count: usize) -> usize {
    if shard_count == 1 {
        return 0;
    }
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    (h.finish() % shard_count as u64) as usize
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
pub fn render_once(model: &Model, at: DateTime<Utc>) -> String {
    let mut e = Exposition::new();
    e.update(model, &ModelDiff::initial(model), at);
    e.snapshot().to_text()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_count_follows_the_tenant_count_with_slack() {
        assert_eq!(shard_count_for(0, 1), 1);
        assert_eq!(shard_count_for(SINGLE_SHARD_UP_TO, 1), 1);
        assert_eq!(shard_count_for(1000, 1), 128);
        // Near the boundary the count stays where it is, either way.
        assert_eq!(shard_count_for(1030, 128), 128);
        assert_eq!(shard_count_for(1000, 256), 256);
        // Far off, it moves.
        assert_eq!(shard_count_for(5000, 128), 1024);
        assert_eq!(shard_count_for(100, 128), 16);
        assert_eq!(shard_count_for(5, 16), 1);
    }
}
