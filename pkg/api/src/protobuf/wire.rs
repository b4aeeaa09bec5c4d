//! Protobuf wire-format primitives (varints, keys, length-delimited fields) and the
//! `runtime.Unknown` envelope around every Kubernetes protobuf object.

use super::ProtoError;

pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;
pub const FIXED32: u8 = 5;

/// A cursor over one message's bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = *self.buf.get(self.pos).ok_or(ProtoError::Truncated)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ProtoError::Malformed(
            "varint longer than 10 bytes".to_string(),
        ))
    }

    /// The next field key: (field number, wire type).
    pub fn key(&mut self) -> Result<(u32, u8), ProtoError> {
        let k = self.varint()?;
        let tag = u32::try_from(k >> 3)
            .ok()
            .filter(|t| *t != 0)
            .ok_or_else(|| ProtoError::Malformed(format!("invalid field key {k}")))?;
        Ok((tag, (k & 7) as u8))
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        let end = self.pos.checked_add(n).ok_or(ProtoError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(ProtoError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    pub fn len_delimited(&mut self) -> Result<&'a [u8], ProtoError> {
        let n = usize::try_from(self.varint()?).map_err(|_| ProtoError::Truncated)?;
        self.bytes(n)
    }

    pub fn fixed64(&mut self) -> Result<u64, ProtoError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Skip a field's value of the given wire type.
    pub fn skip(&mut self, wire: u8) -> Result<(), ProtoError> {
        match wire {
            VARINT => self.varint().map(|_| ()),
            FIXED64 => self.bytes(8).map(|_| ()),
            LEN => self.len_delimited().map(|_| ()),
            FIXED32 => self.bytes(4).map(|_| ()),
            w => Err(ProtoError::Malformed(format!(
                "unsupported wire type {w} (protobuf groups are not used by kubernetes)"
            ))),
        }
    }
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_key(out: &mut Vec<u8>, tag: u32, wire: u8) {
    put_varint(out, (u64::from(tag) << 3) | u64::from(wire));
}

pub fn put_bytes(out: &mut Vec<u8>, tag: u32, b: &[u8]) {
    put_key(out, tag, LEN);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// The decoded `runtime.Unknown` envelope.
pub struct Unknown<'a> {
    pub api_version: String,
    pub kind: String,
    pub raw: &'a [u8],
    pub content_encoding: String,
    pub content_type: String,
}

fn string(b: &[u8], what: &str) -> Result<String, ProtoError> {
    String::from_utf8(b.to_vec())
        .map_err(|_| ProtoError::Malformed(format!("{what} is not valid UTF-8")))
}

/// Decode `runtime.Unknown{1: TypeMeta{1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding,
/// 4: contentType}` (the bytes after the magic prefix).
pub fn decode_unknown(buf: &[u8]) -> Result<Unknown<'_>, ProtoError> {
    let mut u = Unknown {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
        content_encoding: String::new(),
        content_type: String::new(),
    };
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, LEN) => {
                let mut tm = Reader::new(r.len_delimited()?);
                while !tm.done() {
                    match tm.key()? {
                        (1, LEN) => u.api_version = string(tm.len_delimited()?, "apiVersion")?,
                        (2, LEN) => u.kind = string(tm.len_delimited()?, "kind")?,
                        (_, w) => tm.skip(w)?,
                    }
                }
            }
            (2, LEN) => u.raw = r.len_delimited()?,
            (3, LEN) => u.content_encoding = string(r.len_delimited()?, "contentEncoding")?,
            (4, LEN) => u.content_type = string(r.len_delimited()?, "contentType")?,
            (_, w) => r.skip(w)?,
        }
    }
    Ok(u)
}

/// Append the `runtime.Unknown` envelope (without the magic prefix) around `raw`.
pub fn encode_unknown(out: &mut Vec<u8>, api_version: &str, kind: &str, raw: &[u8]) {
    let mut tm = Vec::new();
    put_bytes(&mut tm, 1, api_version.as_bytes());
    put_bytes(&mut tm, 2, kind.as_bytes());
    put_bytes(out, 1, &tm);
    put_bytes(out, 2, raw);
    put_bytes(out, 3, b"");
    put_bytes(out, 4, b"");
}
