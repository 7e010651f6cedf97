//! Gzip built from independently compressed pieces.
//!
//! Each piece is raw deflate ending in a full flush (no dictionary carried over, no final
//! block), so pieces can be concatenated in any combination; one gzip header, a final empty
//! block and a trailer with the combined CRC make a single standard gzip member (the trick
//! `pigz` uses). A changed tenant then costs one shard's compression, not the whole body's.

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

/// One compressed piece and what the trailer needs to know of its plain text.
#[derive(Clone, Debug)]
pub struct Piece {
    pub deflate: Bytes,
    pub crc: u32,
    pub len: u64,
}

const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

impl Piece {
    pub fn compress(plain: &[u8]) -> Piece {
        Piece {
            // The buffer was sized for the worst case; thousands of small pieces would each
            // keep that slack alive for as long as they are served.
            deflate: Bytes::from(shrunk(deflate(plain, FlushCompress::Full))),
            crc: crc32fast::hash(plain),
            len: plain.len() as u64,
        }
    }

    /// The plain text back (for clients that do not accept gzip).
    pub fn decompress(&self) -> Vec<u8> {
        DECOMPRESSOR.with_borrow_mut(|d| {
            d.reset(false);
            self.inflate_with(d)
        })
    }

    fn inflate_with(&self, d: &mut Decompress) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len as usize);
        // Sync flush emits everything up to the full-flush boundary the piece ends with.
        while (d.total_in() as usize) < self.deflate.len() {
            out.reserve(64 * 1024);
            let before = (d.total_in(), d.total_out());
            d.decompress_vec(
                &self.deflate[d.total_in() as usize..],
                &mut out,
                FlushDecompress::Sync,
            )
            .expect("pieces are produced by Piece::compress");
            if (d.total_in(), d.total_out()) == before {
                break;
            }
        }
        out
    }
}

thread_local! {
    /// One compressor per thread, reset between pieces: setting one up (allocating and
    /// clearing its window and hash tables) cost more than compressing a small piece.
    static COMPRESSOR: std::cell::RefCell<Compress> =
        std::cell::RefCell::new(Compress::new(Compression::new(1), false));
    /// The same for a plain-text scrape, which inflates every piece (thousands at 5,000 tenants).
    static DECOMPRESSOR: std::cell::RefCell<Decompress> =
        std::cell::RefCell::new(Decompress::new(false));
}

fn shrunk(mut buffer: Vec<u8>) -> Vec<u8> {
    buffer.shrink_to_fit();
    buffer
}

/// Raw deflate of `plain` at a fast level; `flush` decides whether the stream is finished.
fn deflate(plain: &[u8], flush: FlushCompress) -> Vec<u8> {
    COMPRESSOR.with_borrow_mut(|c| {
        c.reset();
        deflate_with(c, plain, flush)
    })
}

fn deflate_with(c: &mut Compress, plain: &[u8], flush: FlushCompress) -> Vec<u8> {
    let mut out = Vec::with_capacity(plain.len() / 4 + 64);
    loop {
        out.reserve(plain.len() / 4 + 1024);
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&plain[consumed..], &mut out, flush)
            .expect("deflate into a growing buffer cannot fail");
        let done = match flush {
            FlushCompress::Finish => status == flate2::Status::StreamEnd,
            // Output left unfilled after all input is in means the flush completed.
            _ => c.total_in() as usize == plain.len() && out.len() < out.capacity(),
        };
        if done {
            break;
        }
    }
    out
}

/// A complete gzip member: the pieces in order, then `tail` compressed now.
pub fn gzip_member<'a>(pieces: impl IntoIterator<Item = &'a Piece>, tail: &[u8]) -> Vec<Bytes> {
    let mut parts = vec![Bytes::from_static(&HEADER)];
    let mut crc = crc32fast::Hasher::new();
    let mut len = 0u64;
    for p in pieces {
        crc.combine(&crc32fast::Hasher::new_with_initial_len(p.crc, p.len));
        len += p.len;
        parts.push(p.deflate.clone());
    }
    crc.update(tail);
    len += tail.len() as u64;
    let mut end = deflate(tail, FlushCompress::Finish);
    end.extend_from_slice(&crc.finalize().to_le_bytes());
    end.extend_from_slice(&(len as u32).to_le_bytes());
    parts.push(Bytes::from(end));
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn stitched_pieces_are_one_valid_gzip_member() {
        let a = Piece::compress(&b"first piece\n".repeat(1000));
        let b = Piece::compress(b"");
        let c = Piece::compress(b"third\n");
        let body: Vec<u8> = gzip_member([&a, &b, &c], b"tail\n").concat();
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(
            plain,
            format!("{}third\ntail\n", "first piece\n".repeat(1000))
        );
    }

    #[test]
    fn pieces_decompress_alone() {
        let text = b"user_threshold{tenant=\"a\"} 1\n".repeat(5000);
        assert_eq!(Piece::compress(&text).decompress(), text);
        assert_eq!(Piece::compress(b"").decompress(), b"");
    }
}
