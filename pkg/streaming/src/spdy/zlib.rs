//! SPDY/3 header block compression: one zlib stream per direction for the whole session,
//! primed with the SPDY/3 dictionary, each block ended with a sync flush.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

/// The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1),
/// 1423 bytes, Adler-32 0xe3c6a7c2.
pub const DICTIONARY: &[u8] = include_bytes!("dictionary.bin");

/// Decompressed header blocks larger than this are refused.
const MAX_HEADER_BLOCK: usize = 1 << 20;

pub struct HeaderCompressor {
    z: Compress,
}

impl HeaderCompressor {
    pub fn new() -> Result<Self, String> {
        let mut z = Compress::new(Compression::best(), true);
        z.set_dictionary(DICTIONARY).map_err(|e| e.to_string())?;
        Ok(HeaderCompressor { z })
    }

    /// Compresses one header block (the output of `frame::header_block`).
    pub fn compress(&mut self, block: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(block.len() + 64);
        let mut consumed = 0usize;
        loop {
            if out.capacity() - out.len() < 32 {
                out.reserve(256);
            }
            let before = self.z.total_in();
            self.z
                .compress_vec(&block[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| e.to_string())?;
            consumed += (self.z.total_in() - before) as usize;
            if consumed == block.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

pub struct HeaderDecompressor {
    z: Decompress,
}

impl Default for HeaderDecompressor {
    fn default() -> Self {
        HeaderDecompressor {
            z: Decompress::new(true),
        }
    }
}

impl HeaderDecompressor {
    /// Decompresses the next header block of the session.
    pub fn decompress(&mut self, block: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(block.len() * 4 + 64);
        let mut consumed = 0usize;
        loop {
            if out.len() == out.capacity() {
                if out.len() >= MAX_HEADER_BLOCK {
                    return Err("header block too large".to_string());
                }
                out.reserve(out.capacity().max(256));
            }
            let (before_in, before_out) = (self.z.total_in(), out.len());
            let res = self
                .z
                .decompress_vec(&block[consumed..], &mut out, FlushDecompress::Sync);
            consumed += (self.z.total_in() - before_in) as usize;
            match res {
                Ok(_) => {}
                Err(e) => match e.needs_dictionary() {
                    Some(_) => {
                        self.z
                            .set_dictionary(DICTIONARY)
                            .map_err(|e| e.to_string())?;
                        continue;
                    }
                    None => return Err(e.to_string()),
                },
            }
            if consumed == block.len() && out.len() < out.capacity() {
                return Ok(out);
            }
            if self.z.total_in() == before_in && out.len() == before_out {
                return Err("truncated header block".to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::{header_block, parse_header_block};
    use super::*;

    #[test]
    fn dictionary_is_the_spdy3_one() {
        assert_eq!(DICTIONARY.len(), 1423);
        let mut a: u32 = 1;
        let mut b: u32 = 0;
        for &x in DICTIONARY {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((b << 16) | a, 0xe3c6_a7c2);
    }

    #[test]
    fn blocks_share_one_context() {
        let mut c = HeaderCompressor::new().unwrap();
        let mut d = HeaderDecompressor::default();
        for i in 0..5 {
            let port = (8080 + i).to_string();
            let raw = header_block(&[("streamtype", "data"), ("port", &port), ("requestid", "0")]);
            let z = c.compress(&raw).unwrap();
            // sync flush marker ends every block
            assert_eq!(&z[z.len() - 4..], &[0, 0, 0xff, 0xff]);
            let back = d.decompress(&z).unwrap();
            assert_eq!(back, raw);
        }
        // an empty header block (what SYN_REPLY carries)
        let z = c.compress(&header_block(&[])).unwrap();
        assert_eq!(d.decompress(&z).unwrap(), vec![0, 0, 0, 0]);
    }

    /// A block produced by an independent zlib writer (flate2's `ZlibEncoder`-style raw API with
    /// the dictionary, as Go's `zlib.NewWriterLevelDict` does) decodes.
    #[test]
    fn decodes_known_good_stream() {
        let raw1 = header_block(&[("streamtype", "error")]);
        let raw2 = header_block(&[("streamtype", "stdout")]);
        let mut z = Compress::new(Compression::default(), true);
        z.set_dictionary(DICTIONARY).unwrap();
        let mut b1 = Vec::with_capacity(256);
        z.compress_vec(&raw1, &mut b1, FlushCompress::Sync).unwrap();
        let mut b2 = Vec::with_capacity(256);
        z.compress_vec(&raw2, &mut b2, FlushCompress::Sync).unwrap();
        // zlib header with FDICT set, then the dictionary's Adler-32
        assert_eq!(b1[1] & 0x20, 0x20);
        assert_eq!(&b1[2..6], &0xe3c6_a7c2u32.to_be_bytes());
        let mut d = HeaderDecompressor::default();
        let h1 = parse_header_block(&d.decompress(&b1).unwrap()).unwrap();
        let h2 = parse_header_block(&d.decompress(&b2).unwrap()).unwrap();
        assert_eq!(h1, vec![("streamtype".to_string(), "error".to_string())]);
        assert_eq!(h2, vec![("streamtype".to_string(), "stdout".to_string())]);
    }

    #[test]
    fn garbage_is_an_error() {
        let mut d = HeaderDecompressor::default();
        assert!(d.decompress(&[0x12, 0x34, 0x56, 0x78, 0x9a]).is_err());
    }
}
