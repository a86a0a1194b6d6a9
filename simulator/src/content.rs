//! Recognisable file contents and page classification, shared by both backends.

use crate::observe::Content;

pub const FILE_MAGIC: &[u8; 8] = b"MADCHECK";

/// The original content of page `page` of scenario file `file`: an 16-byte header (magic, file, page)
/// followed by a byte pattern that depends on both, so no file page is uniform, zero, or equal to another.
pub fn file_page(file: u32, page: u32, page_size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(page_size);
    v.extend_from_slice(FILE_MAGIC);
    v.extend_from_slice(&file.to_le_bytes());
    v.extend_from_slice(&page.to_le_bytes());
    let seed = file.wrapping_mul(131).wrapping_add(page.wrapping_mul(7)) as u8;
    for i in 16..page_size {
        v.push(seed.wrapping_add((i % 251) as u8) | 1);
    }
    v
}

/// Classify a page's bytes. `hash` computes XXH3-64 (the simulator never hashes; the harness passes it).
pub fn classify(bytes: &[u8], hash: impl Fn(&[u8]) -> u64) -> Content {
    let first = bytes[0];
    if bytes.iter().all(|&b| b == first) {
        return if first == 0 { Content::Zero } else { Content::Fill(first) };
    }
    if bytes.len() >= 16 && &bytes[..8] == FILE_MAGIC {
        let file = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
        let page = u32::from_le_bytes(bytes[12..16].try_into().unwrap());
        if bytes == file_page(file, page, bytes.len()).as_slice() {
            return Content::FilePage { file, page };
        }
    }
    Content::Hash(hash(bytes))
}
