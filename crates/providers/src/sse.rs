//! Server-sent events framing, fed with arbitrary byte splits.
//!
//! Every streaming provider here frames its events as SSE, and network reads
//! cut the body anywhere: inside a line, between `\r` and `\n`, inside a
//! multi-byte UTF-8 character. The parser buffers until a line is complete
//! (line ends are ASCII, so a complete line never ends inside a character)
//! and follows the WHATWG rules that matter here: `data:` lines of one event
//! are joined with `\n`, `:` lines are comments, a blank line dispatches.

/// One dispatched event: its `event:` name, if any, and its joined data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub(crate) event: Option<String>,
    pub(crate) data: Vec<u8>,
}

/// Incremental SSE parser.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buf: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    event: Option<String>,
    started: bool,
}

impl SseParser {
    /// Adds bytes and appends every event they complete to `out`.
    pub(crate) fn push(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) {
        self.buf.extend_from_slice(bytes);
        if !self.started {
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            if self.buf.len() < BOM.len() && BOM.starts_with(&self.buf) {
                // Maybe a byte-order mark still arriving.
                return;
            }
            self.started = true;
            if self.buf.starts_with(BOM) {
                self.buf.drain(..BOM.len());
            }
        }
        let mut consumed = 0;
        loop {
            let rest = &self.buf[consumed..];
            let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                break;
            };
            let terminator = if rest[pos] == b'\r' {
                match rest.get(pos + 1) {
                    Some(b'\n') => 2,
                    Some(_) => 1,
                    // A lone `\r` at the end may be the first half of `\r\n`.
                    None => break,
                }
            } else {
                1
            };
            let line = rest[..pos].to_vec();
            consumed += pos + terminator;
            self.line(&line, out);
        }
        self.buf.drain(..consumed);
    }

    /// The body ended: handles a last line without terminator and dispatches
    /// a pending event even without the closing blank line.
    pub(crate) fn finish(&mut self, out: &mut Vec<SseEvent>) {
        let mut rest = std::mem::take(&mut self.buf);
        if rest.last() == Some(&b'\r') {
            rest.pop();
        }
        if !rest.is_empty() {
            self.line(&rest, out);
        }
        self.dispatch(out);
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if self.has_data {
            self.has_data = false;
            out.push(SseEvent {
                event,
                data: std::mem::take(&mut self.data),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &[u8], piece: usize) -> Vec<SseEvent> {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        for chunk in input.chunks(piece) {
            p.push(chunk, &mut out);
        }
        p.finish(&mut out);
        out
    }

    #[test]
    fn joins_multiline_data_skips_comments_and_names_events() {
        let input = b": keep-alive\n\nevent: ping\ndata: {\"a\":\ndata: 1}\n\ndata:[DONE]\n\n";
        for piece in 1..input.len() {
            let events = parse_in_pieces(input, piece);
            assert_eq!(events.len(), 2, "piece {piece}");
            assert_eq!(events[0].event.as_deref(), Some("ping"));
            assert_eq!(events[0].data, b"{\"a\":\n1}");
            assert_eq!(events[1].event, None);
            assert_eq!(events[1].data, b"[DONE]");
        }
    }

    #[test]
    fn crlf_and_cr_line_ends_split_anywhere() {
        let input = "data: é\r\n\r\ndata: ü\r\rdata: x\n\n".as_bytes();
        for piece in 1..input.len() {
            let events = parse_in_pieces(input, piece);
            let datas: Vec<_> = events
                .iter()
                .map(|e| String::from_utf8(e.data.clone()).unwrap())
                .collect();
            assert_eq!(datas, ["é", "ü", "x"], "piece {piece}");
        }
    }

    #[test]
    fn pending_event_is_dispatched_at_the_end() {
        let events = parse_in_pieces(b"data: last", 3);
        assert_eq!(
            events,
            [SseEvent {
                event: None,
                data: b"last".to_vec()
            }]
        );
    }

    #[test]
    fn bom_is_ignored() {
        let events = parse_in_pieces(b"\xEF\xBB\xBFdata: a\n\n", 1);
        assert_eq!(events[0].data, b"a");
    }
}
