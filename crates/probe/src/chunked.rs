//! A decoder for HTTP/1.1 chunked bodies that hands data out as it arrives,
//! so that byte milestones are timed on the decoded body, not the framing.

/// Where the decoder is in the framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk-size line (hex digits, then extensions to the LF).
    Size { value: u64, digits: u32, ext: bool },
    /// Inside a chunk's data.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines; `empty` while the current line has no bytes yet.
    Trailer { empty: bool },
    /// The last chunk and trailers are through.
    Done,
}

/// Incremental chunked-encoding decoder.
#[derive(Debug)]
pub(crate) struct Chunked {
    state: State,
}

impl Chunked {
    pub(crate) fn new() -> Chunked {
        Chunked {
            state: State::Size {
                value: 0,
                digits: 0,
                ext: false,
            },
        }
    }

    /// True once the terminating chunk and trailers have been read.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes `input`, passing each run of body bytes to `data`. Bytes after
    /// the end of the body are ignored.
    pub(crate) fn feed(
        &mut self,
        mut input: &[u8],
        mut data: impl FnMut(&[u8]),
    ) -> Result<(), String> {
        while let Some((&b, rest)) = input.split_first() {
            match &mut self.state {
                State::Done => return Ok(()),
                State::Data(remaining) => {
                    let n = usize::try_from(*remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    data(&input[..n]);
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = State::DataEnd;
                    }
                    input = &input[n..];
                    continue;
                }
                State::Size { value, digits, ext } => match b {
                    b'\n' => {
                        if *digits == 0 {
                            return Err("a chunk-size line has no size".into());
                        }
                        self.state = if *value == 0 {
                            State::Trailer { empty: true }
                        } else {
                            State::Data(*value)
                        };
                    }
                    b'\r' => {}
                    _ if *ext => {}
                    b';' | b' ' | b'\t' => *ext = true,
                    _ => {
                        let d = (b as char)
                            .to_digit(16)
                            .ok_or_else(|| format!("a chunk size has the byte {b:#04x}"))?;
                        if *digits >= 15 {
                            return Err("a chunk size is too large".into());
                        }
                        *value = *value * 16 + u64::from(d);
                        *digits += 1;
                    }
                },
                State::DataEnd => match b {
                    b'\r' => {}
                    b'\n' => {
                        self.state = State::Size {
                            value: 0,
                            digits: 0,
                            ext: false,
                        }
                    }
                    _ => return Err("a chunk's data is longer than its size".into()),
                },
                State::Trailer { empty } => match b {
                    b'\r' => {}
                    b'\n' if *empty => self.state = State::Done,
                    b'\n' => *empty = true,
                    _ => *empty = false,
                },
            }
            input = rest;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(encoded: &[u8], piece: usize) -> Result<(Vec<u8>, bool), String> {
        let mut c = Chunked::new();
        let mut out = Vec::new();
        for part in encoded.chunks(piece) {
            c.feed(part, |d| out.extend_from_slice(d))?;
        }
        Ok((out, c.is_done()))
    }

    #[test]
    fn decodes_in_any_split() {
        let encoded =
            b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\n";
        for piece in 1..encoded.len() {
            let (body, done) = decode_in_pieces(encoded, piece).unwrap();
            assert_eq!(body, b"helloabcdefghijklmnopqrstuvwxyz");
            assert!(done, "piece {piece}");
        }
    }

    #[test]
    fn rejects_bad_framing() {
        assert!(decode_in_pieces(b"zz\r\n", 4).is_err());
        assert!(decode_in_pieces(b"\r\n", 4).is_err());
        assert!(decode_in_pieces(b"1\r\nab\r\n", 8).is_err());
        let (_, done) = decode_in_pieces(b"5\r\nhel", 8).unwrap();
        assert!(!done);
    }
}
