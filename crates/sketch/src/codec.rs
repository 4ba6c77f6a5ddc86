//! The sketch's binary form, as stored in rollup files and passed between
//! SQL functions: version 1 is
//!
//! ```text
//! [1] [alpha f64 LE] [count varint] [zero varint] [sum f64] [min f64] [max f64]
//! positive store, then negative store, each:
//!   [buckets varint] then per non-empty bucket, ascending:
//!   [index − previous index, zigzag varint (previous starts at 0)] [count varint]
//! ```
//!
//! Decoding checks the structure (version, α, strictly ascending indices,
//! non-zero counts that add up to the count, min ≤ max, no trailing bytes),
//! so damaged bytes are an error or, at worst, a sketch with other counts —
//! never a panic. It does not prove that min, max and sum agree with the
//! buckets.

use crate::store::MAX_BUCKETS;
use crate::DDSketch;

const VERSION: u8 = 1;

/// Bucket lists (positive, negative) of a sketch being merged.
type Buckets = (Vec<(i32, u64)>, Vec<(i32, u64)>);

thread_local! {
    /// [`DDSketch::merge_encoded`]'s lists, kept between calls.
    static SCRATCH: std::cell::RefCell<Buckets> = const {
        std::cell::RefCell::new((Vec::new(), Vec::new()))
    };
}

/// Why bytes are not a sketch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a sketch: {0}")]
pub struct DecodeError(String);

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A cursor over the bytes being decoded.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn err<T>(what: &str) -> Result<T, DecodeError> {
        Err(DecodeError(what.to_owned()))
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self
            .bytes
            .split_first()
            .ok_or_else(|| DecodeError("truncated".into()))?;
        self.bytes = rest;
        Ok(b)
    }

    fn f64(&mut self) -> Result<f64, DecodeError> {
        if self.bytes.len() < 8 {
            return Self::err("truncated");
        }
        let (head, rest) = self.bytes.split_at(8);
        self.bytes = rest;
        let mut b = [0u8; 8];
        b.copy_from_slice(head);
        Ok(f64::from_le_bytes(b))
    }

    /// Most varints here (index steps, small counts) are one byte: that
    /// case is inlined into the bucket loop.
    #[inline]
    fn varint(&mut self) -> Result<u64, DecodeError> {
        match self.bytes.split_first() {
            Some((&b, rest)) if b < 0x80 => {
                self.bytes = rest;
                Ok(u64::from(b))
            }
            _ => self.long_varint(),
        }
    }

    fn long_varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7F);
            if shift == 63 && bits > 1 {
                return Self::err("a varint overflows 64 bits");
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Self::err("a varint is longer than 10 bytes")
    }
}

impl DDSketch {
    /// The sketch's binary form (see the module docs of `codec`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48 + 4 * self.positive.buckets().count());
        out.push(VERSION);
        out.extend_from_slice(&self.alpha.to_le_bytes());
        put_varint(&mut out, self.count);
        put_varint(&mut out, self.zero);
        for v in [self.sum, self.min, self.max] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for store in [&self.positive, &self.negative] {
            put_varint(&mut out, store.buckets().count() as u64);
            let mut previous = 0i64;
            for (i, c) in store.buckets() {
                put_varint(&mut out, zigzag(i64::from(i) - previous));
                put_varint(&mut out, c);
                previous = i64::from(i);
            }
        }
        out
    }

    /// A sketch from its binary form.
    pub fn decode(bytes: &[u8]) -> Result<DDSketch, DecodeError> {
        let alpha = Reader { bytes }.header_alpha()?;
        let mut sketch = DDSketch::new(alpha).map_err(|e| DecodeError(e.to_string()))?;
        let header = parse(bytes, |negative, index, c| {
            if negative {
                sketch.negative.add(index, c);
            } else {
                sketch.positive.add(index, c);
            }
        })?;
        sketch.zero = header.zero;
        sketch.count = header.count;
        if header.count > 0 {
            sketch.sum = header.sum;
            sketch.min = header.min;
            sketch.max = header.max;
        }
        Ok(sketch)
    }

    /// Merges the sketch whose binary form is `bytes` into this one, as
    /// `merge(&decode(bytes)?)` would, without building it: what query-time
    /// merging of many small rollup sketches spends its time on. Damaged
    /// bytes are an error and leave this sketch as it was.
    pub fn merge_encoded(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        let alpha = Reader { bytes }.header_alpha()?;
        if alpha != self.alpha {
            return Reader::err(&format!(
                "accuracy {alpha} cannot merge into a sketch of accuracy {}",
                self.alpha
            ));
        }
        // Checked in full first, so a damaged sketch adds nothing: the
        // buckets go to this thread's scratch lists, which are reused, so
        // merging many small sketches allocates nothing.
        let header = SCRATCH.with_borrow_mut(|(positive, negative)| {
            positive.clear();
            negative.clear();
            let header = parse(bytes, |is_negative, index, c| {
                if is_negative {
                    negative.push((index, c));
                } else {
                    positive.push((index, c));
                }
            })?;
            self.positive.add_ascending(positive);
            self.negative.add_ascending(negative);
            Ok::<_, DecodeError>(header)
        })?;
        if header.count > 0 {
            self.zero = self.zero.saturating_add(header.zero);
            self.count = self.count.saturating_add(header.count);
            self.sum += header.sum;
            self.min = self.min.min(header.min);
            self.max = self.max.max(header.max);
        }
        Ok(())
    }
}

impl Reader<'_> {
    /// The α of the sketch these bytes start.
    fn header_alpha(&mut self) -> Result<f64, DecodeError> {
        let version = self.byte()?;
        if version != VERSION {
            return Reader::err(&format!("version {version}, expected {VERSION}"));
        }
        self.f64()
    }
}

/// The exact figures of an encoded sketch.
struct Header {
    count: u64,
    zero: u64,
    sum: f64,
    min: f64,
    max: f64,
}

/// Checks the binary form of a sketch and hands each bucket (negative
/// store?, index, count) to `bucket`, lowest first per store.
fn parse(bytes: &[u8], mut bucket: impl FnMut(bool, i32, u64)) -> Result<Header, DecodeError> {
    let mut r = Reader { bytes };
    r.header_alpha()?;
    let count = r.varint()?;
    let zero = r.varint()?;
    let (sum, min, max) = (r.f64()?, r.f64()?, r.f64()?);
    let mut total = zero;
    for negative in [false, true] {
        let buckets = r.varint()?;
        if buckets > MAX_BUCKETS as u64 {
            return Reader::err("more buckets than a store keeps");
        }
        let mut previous = 0i64;
        for n in 0..buckets {
            let index = previous
                .checked_add(unzigzag(r.varint()?))
                .ok_or_else(|| DecodeError("a bucket index is out of range".into()))?;
            if n > 0 && index <= previous {
                return Reader::err("bucket indices are not ascending");
            }
            let index = i32::try_from(index)
                .map_err(|_| DecodeError("a bucket index is out of range".into()))?;
            let c = r.varint()?;
            if c == 0 {
                return Reader::err("an empty bucket");
            }
            total = total
                .checked_add(c)
                .ok_or_else(|| DecodeError("counts overflow".into()))?;
            bucket(negative, index, c);
            previous = i64::from(index);
        }
    }
    if !r.bytes.is_empty() {
        return Reader::err("trailing bytes");
    }
    if total != count {
        return Reader::err("bucket counts do not add up to the count");
    }
    if count > 0 && !(min <= max && sum.is_finite()) {
        return Reader::err("min, max or sum is not a number");
    }
    Ok(Header {
        count,
        zero,
        sum: if count > 0 { sum } else { 0.0 },
        min,
        max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(Reader { bytes: &out }.varint(), Ok(v));
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn merging_encoded_equals_merging_decoded() {
        let mut a = DDSketch::new(0.01).unwrap();
        let mut b = DDSketch::new(0.01).unwrap();
        for v in [1.0, 2.5, -3.0, 0.0, 1e6] {
            a.add(v);
            b.add(v * 7.0 - 1.0);
        }
        let mut via_decode = a.clone();
        via_decode
            .merge(&DDSketch::decode(&b.encode()).unwrap())
            .unwrap();
        let mut direct = a.clone();
        direct.merge_encoded(&b.encode()).unwrap();
        assert_eq!(direct, via_decode);
        // Into an empty sketch: the same as decoding.
        let mut empty = DDSketch::default();
        empty.merge_encoded(&b.encode()).unwrap();
        assert_eq!(empty, DDSketch::decode(&b.encode()).unwrap());
        // Damage or another accuracy changes nothing.
        let bytes = b.encode();
        let before = direct.clone();
        assert!(direct.merge_encoded(&bytes[..bytes.len() - 1]).is_err());
        assert!(direct
            .merge_encoded(&DDSketch::new(0.02).unwrap().encode())
            .is_err());
        assert_eq!(direct, before);
    }

    #[test]
    fn damage_is_an_error() {
        let mut s = DDSketch::new(0.01).unwrap();
        for v in [1.0, 2.0, -3.0, 0.0] {
            s.add(v);
        }
        let bytes = s.encode();
        assert_eq!(DDSketch::decode(&bytes).unwrap(), s);
        assert!(DDSketch::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(DDSketch::decode(&extra).is_err());
        let mut wrong_count = bytes.clone();
        wrong_count[9] = 7;
        assert!(DDSketch::decode(&wrong_count).is_err());
        assert!(DDSketch::decode(&[2]).is_err());
    }
}
