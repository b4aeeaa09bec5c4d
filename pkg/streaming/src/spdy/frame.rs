//! SPDY/3.1 frame encoding and decoding (draft-mbelshe-httpbis-spdy-00 §2, SPDY/3.1 §2.6).
//! Header blocks stay compressed here; `super::zlib` turns them into name/value pairs, because
//! the zlib context spans the whole session and must see blocks in wire order.

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub const VERSION: u16 = 3;

pub const TYPE_SYN_STREAM: u16 = 1;
pub const TYPE_SYN_REPLY: u16 = 2;
pub const TYPE_RST_STREAM: u16 = 3;
pub const TYPE_SETTINGS: u16 = 4;
pub const TYPE_PING: u16 = 6;
pub const TYPE_GOAWAY: u16 = 7;
pub const TYPE_HEADERS: u16 = 8;
pub const TYPE_WINDOW_UPDATE: u16 = 9;

pub const FLAG_FIN: u8 = 0x01;

/// RST_STREAM status codes.
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_REFUSED_STREAM: u32 = 3;
pub const RST_CANCEL: u32 = 5;

/// GOAWAY status OK.
pub const GOAWAY_OK: u32 = 0;

/// SETTINGS id for the initial window size.
pub const SETTINGS_INITIAL_WINDOW_SIZE: u32 = 7;

/// The longest frame payload we accept (the 24-bit length allows 16 MiB; keep memory bounded).
pub const MAX_FRAME_PAYLOAD: usize = 16 * 1024 * 1024 - 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Data {
        stream_id: u32,
        fin: bool,
        data: Bytes,
    },
    SynStream {
        stream_id: u32,
        associated_id: u32,
        priority: u8,
        slot: u8,
        flags: u8,
        header_block: Bytes,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        header_block: Bytes,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        flags: u8,
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        header_block: Bytes,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    /// A control frame of a type SPDY/3.1 does not define; receivers ignore it.
    Unknown {
        frame_type: u16,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("unsupported spdy version {0}")]
    Version(u16),
    #[error("{0} frame has invalid length {1}")]
    Length(&'static str, usize),
    #[error("frame of {0} bytes is too large")]
    TooLarge(usize),
}

const STREAM_MASK: u32 = 0x7fff_ffff;

/// Decodes one frame from the front of `buf`, or `None` if more bytes are needed.
pub fn decode(buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let word = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let flags = buf[4];
    let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
    if len > MAX_FRAME_PAYLOAD {
        return Err(FrameError::TooLarge(len));
    }
    if buf.len() < 8 + len {
        buf.reserve(8 + len - buf.len());
        return Ok(None);
    }
    buf.advance(8);
    let mut p = buf.split_to(len).freeze();
    if word & 0x8000_0000 == 0 {
        return Ok(Some(Frame::Data {
            stream_id: word & STREAM_MASK,
            fin: flags & FLAG_FIN != 0,
            data: p,
        }));
    }
    let version = ((word >> 16) & 0x7fff) as u16;
    if version != VERSION {
        return Err(FrameError::Version(version));
    }
    let frame_type = (word & 0xffff) as u16;
    let need = |name: &'static str, min: usize, exact: bool| {
        if (exact && len != min) || len < min {
            Err(FrameError::Length(name, len))
        } else {
            Ok(())
        }
    };
    let frame = match frame_type {
        TYPE_SYN_STREAM => {
            need("SYN_STREAM", 10, false)?;
            let stream_id = p.get_u32() & STREAM_MASK;
            let associated_id = p.get_u32() & STREAM_MASK;
            let priority = p.get_u8() >> 5;
            let slot = p.get_u8();
            Frame::SynStream {
                stream_id,
                associated_id,
                priority,
                slot,
                flags,
                header_block: p,
            }
        }
        TYPE_SYN_REPLY => {
            need("SYN_REPLY", 4, false)?;
            let stream_id = p.get_u32() & STREAM_MASK;
            Frame::SynReply {
                stream_id,
                flags,
                header_block: p,
            }
        }
        TYPE_RST_STREAM => {
            need("RST_STREAM", 8, true)?;
            Frame::RstStream {
                stream_id: p.get_u32() & STREAM_MASK,
                status: p.get_u32(),
            }
        }
        TYPE_SETTINGS => {
            need("SETTINGS", 4, false)?;
            let n = p.get_u32() as usize;
            if p.len() != n.saturating_mul(8) {
                return Err(FrameError::Length("SETTINGS", len));
            }
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                let fid = p.get_u32();
                entries.push(((fid >> 24) as u8, fid & 0x00ff_ffff, p.get_u32()));
            }
            Frame::Settings { flags, entries }
        }
        TYPE_PING => {
            need("PING", 4, true)?;
            Frame::Ping { id: p.get_u32() }
        }
        TYPE_GOAWAY => {
            need("GOAWAY", 8, true)?;
            Frame::GoAway {
                last_good_stream_id: p.get_u32() & STREAM_MASK,
                status: p.get_u32(),
            }
        }
        TYPE_HEADERS => {
            need("HEADERS", 4, false)?;
            let stream_id = p.get_u32() & STREAM_MASK;
            Frame::Headers {
                stream_id,
                flags,
                header_block: p,
            }
        }
        TYPE_WINDOW_UPDATE => {
            need("WINDOW_UPDATE", 8, true)?;
            Frame::WindowUpdate {
                stream_id: p.get_u32() & STREAM_MASK,
                delta: p.get_u32() & STREAM_MASK,
            }
        }
        other => Frame::Unknown { frame_type: other },
    };
    Ok(Some(frame))
}

fn control(out: &mut BytesMut, frame_type: u16, flags: u8, len: usize) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(frame_type);
    out.put_u8(flags);
    out.put_uint(len as u64, 3);
}

/// Appends the wire form of `frame` to `out`.
pub fn encode(frame: &Frame, out: &mut BytesMut) {
    match frame {
        Frame::Data {
            stream_id,
            fin,
            data,
        } => {
            out.put_u32(stream_id & STREAM_MASK);
            out.put_u8(if *fin { FLAG_FIN } else { 0 });
            out.put_uint(data.len() as u64, 3);
            out.extend_from_slice(data);
        }
        Frame::SynStream {
            stream_id,
            associated_id,
            priority,
            slot,
            flags,
            header_block,
        } => {
            control(out, TYPE_SYN_STREAM, *flags, 10 + header_block.len());
            out.put_u32(stream_id & STREAM_MASK);
            out.put_u32(associated_id & STREAM_MASK);
            out.put_u8(priority << 5);
            out.put_u8(*slot);
            out.extend_from_slice(header_block);
        }
        Frame::SynReply {
            stream_id,
            flags,
            header_block,
        } => {
            control(out, TYPE_SYN_REPLY, *flags, 4 + header_block.len());
            out.put_u32(stream_id & STREAM_MASK);
            out.extend_from_slice(header_block);
        }
        Frame::RstStream { stream_id, status } => {
            control(out, TYPE_RST_STREAM, 0, 8);
            out.put_u32(stream_id & STREAM_MASK);
            out.put_u32(*status);
        }
        Frame::Settings { flags, entries } => {
            control(out, TYPE_SETTINGS, *flags, 4 + 8 * entries.len());
            out.put_u32(entries.len() as u32);
            for (f, id, v) in entries {
                out.put_u32((u32::from(*f) << 24) | (id & 0x00ff_ffff));
                out.put_u32(*v);
            }
        }
        Frame::Ping { id } => {
            control(out, TYPE_PING, 0, 4);
            out.put_u32(*id);
        }
        Frame::GoAway {
            last_good_stream_id,
            status,
        } => {
            control(out, TYPE_GOAWAY, 0, 8);
            out.put_u32(last_good_stream_id & STREAM_MASK);
            out.put_u32(*status);
        }
        Frame::Headers {
            stream_id,
            flags,
            header_block,
        } => {
            control(out, TYPE_HEADERS, *flags, 4 + header_block.len());
            out.put_u32(stream_id & STREAM_MASK);
            out.extend_from_slice(header_block);
        }
        Frame::WindowUpdate { stream_id, delta } => {
            control(out, TYPE_WINDOW_UPDATE, 0, 8);
            out.put_u32(stream_id & STREAM_MASK);
            out.put_u32(delta & STREAM_MASK);
        }
        Frame::Unknown { frame_type } => control(out, *frame_type, 0, 0),
    }
}

/// Serializes name/value pairs into an (uncompressed) SPDY/3 header block. Names are
/// lowercased; repeated names are joined with NUL as the spec requires.
pub fn header_block(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut merged: Vec<(String, String)> = Vec::new();
    for (n, v) in headers {
        let n = n.to_ascii_lowercase();
        match merged.iter_mut().find(|(m, _)| *m == n) {
            Some((_, existing)) => {
                existing.push('\0');
                existing.push_str(v);
            }
            None => merged.push((n, (*v).to_string())),
        }
    }
    let mut out = Vec::new();
    out.put_u32(merged.len() as u32);
    for (n, v) in &merged {
        out.put_u32(n.len() as u32);
        out.extend_from_slice(n.as_bytes());
        out.put_u32(v.len() as u32);
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// Parses an uncompressed header block into (lowercased name, value) pairs, splitting
/// NUL-joined values.
pub fn parse_header_block(mut b: &[u8]) -> Result<Vec<(String, String)>, String> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if b.len() < n {
            return Err("truncated header block".to_string());
        }
        let (h, t) = b.split_at(n);
        *b = t;
        Ok(h)
    }
    fn len(b: &mut &[u8]) -> Result<usize, String> {
        let s = take(b, 4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
    }
    let count = len(&mut b)?;
    let mut out = Vec::new();
    for _ in 0..count {
        let n = len(&mut b)?;
        let name = String::from_utf8_lossy(take(&mut b, n)?).to_ascii_lowercase();
        let n = len(&mut b)?;
        let value = String::from_utf8_lossy(take(&mut b, n)?).into_owned();
        for v in value.split('\0') {
            out.push((name.clone(), v.to_string()));
        }
    }
    Ok(out)
}

/// The first value of header `name` (lowercase).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(f: Frame) {
        let mut b = BytesMut::new();
        encode(&f, &mut b);
        let wire_len = b.len();
        b.extend_from_slice(&[0x80]); // the start of a next frame stays in the buffer
        let got = decode(&mut b).unwrap().unwrap();
        assert_eq!(got, f);
        assert_eq!(b.len(), 1, "decode consumed {wire_len} bytes exactly");
    }

    #[test]
    fn frames_round_trip() {
        round_trip(Frame::Data {
            stream_id: 3,
            fin: true,
            data: Bytes::from_static(b"abc"),
        });
        round_trip(Frame::Data {
            stream_id: 5,
            fin: false,
            data: Bytes::new(),
        });
        round_trip(Frame::SynStream {
            stream_id: 1,
            associated_id: 0,
            priority: 3,
            slot: 0,
            flags: FLAG_FIN,
            header_block: Bytes::from_static(b"\x01\x02"),
        });
        round_trip(Frame::SynReply {
            stream_id: 1,
            flags: 0,
            header_block: Bytes::from_static(b"xyz"),
        });
        round_trip(Frame::RstStream {
            stream_id: 9,
            status: RST_CANCEL,
        });
        round_trip(Frame::Settings {
            flags: 0,
            entries: vec![(0, SETTINGS_INITIAL_WINDOW_SIZE, 65536)],
        });
        round_trip(Frame::Ping { id: 7 });
        round_trip(Frame::GoAway {
            last_good_stream_id: 11,
            status: GOAWAY_OK,
        });
        round_trip(Frame::Headers {
            stream_id: 1,
            flags: 0,
            header_block: Bytes::from_static(b"h"),
        });
        round_trip(Frame::WindowUpdate {
            stream_id: 0,
            delta: 4096,
        });
    }

    #[test]
    fn wire_layout_is_spdy3() {
        let mut b = BytesMut::new();
        encode(&Frame::Ping { id: 1 }, &mut b);
        assert_eq!(
            &b[..],
            &[0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1]
        );
        let mut b = BytesMut::new();
        encode(
            &Frame::Data {
                stream_id: 1,
                fin: true,
                data: Bytes::from_static(b"x"),
            },
            &mut b,
        );
        assert_eq!(&b[..], &[0, 0, 0, 1, 0x01, 0, 0, 1, b'x']);
    }

    #[test]
    fn partial_and_bad_frames() {
        let mut b = BytesMut::from(&[0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0][..]);
        assert_eq!(decode(&mut b).unwrap(), None);
        let mut b =
            BytesMut::from(&[0x80, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1][..]);
        assert_eq!(decode(&mut b), Err(FrameError::Version(2)));
        let mut b = BytesMut::from(&[0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x02, 0, 0][..]);
        assert!(matches!(decode(&mut b), Err(FrameError::Length("PING", 2))));
    }

    #[test]
    fn header_block_round_trip() {
        let raw = header_block(&[("streamType", "stdin"), ("port", "80"), ("port", "81")]);
        let parsed = parse_header_block(&raw).unwrap();
        assert_eq!(
            parsed,
            vec![
                ("streamtype".to_string(), "stdin".to_string()),
                ("port".to_string(), "80".to_string()),
                ("port".to_string(), "81".to_string()),
            ]
        );
        assert_eq!(header(&parsed, "port"), Some("80"));
        assert!(parse_header_block(&raw[..raw.len() - 1]).is_err());
    }
}
