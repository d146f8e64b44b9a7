//! Ogg pages (RFC 3533), read and written by hand. Symphonia demuxes Ogg but has no Opus
//! decoder, and the duration of an Ogg stream is a container fact anyway: the last page's
//! granule position. The writer serves the Opus generator.

/// The Ogg checksum: CRC-32 with polynomial 0x04C11DB7, not reflected, zero initial value and
/// no final XOR, computed over the page with its checksum field zeroed.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    crc32_update(0, data)
}

fn crc32_update(crc: u32, data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = crc_table();
    data.iter().fold(crc, |crc, &byte| {
        (crc << 8) ^ TABLE[usize::from(((crc >> 24) as u8) ^ byte)]
    })
}

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut r = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            r = if r & 0x8000_0000 != 0 {
                (r << 1) ^ 0x04C1_1DB7
            } else {
                r << 1
            };
            bit += 1;
        }
        table[i] = r;
        i += 1;
    }
    table
}

/// Header type flag: first page of a logical stream.
pub(crate) const BOS: u8 = 0x02;
/// Header type flag: last page of a logical stream.
pub(crate) const EOS: u8 = 0x04;

const HEADER_LEN: usize = 27;

/// One page, borrowed from the stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page<'a> {
    pub header_type: u8,
    /// -1 (all ones) means "no packet ends on this page".
    pub granule: u64,
    pub serial: u32,
    pub lacing: &'a [u8],
    pub body: &'a [u8],
}

impl<'a> Page<'a> {
    /// Packets completed on this page, plus a trailing partial one (`complete == false`) when
    /// the last lacing value is 255.
    pub(crate) fn segments(&self) -> impl Iterator<Item = (&'a [u8], bool)> + 'a {
        let lacing = self.lacing;
        let body = self.body;
        let mut start = 0usize;
        let mut len = 0usize;
        let mut iter = lacing.iter();
        std::iter::from_fn(move || {
            for &value in iter.by_ref() {
                len += usize::from(value);
                if value < 255 {
                    let packet = body.get(start..start + len)?;
                    start += len;
                    len = 0;
                    return Some((packet, true));
                }
            }
            if len > 0 {
                let packet = body.get(start..start + len)?;
                len = 0;
                return Some((packet, false));
            }
            None
        })
    }
}

/// Why a byte range is not an Ogg page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PageError {
    /// Fewer bytes than the page declares: the file was cut.
    Truncated,
    /// Capture pattern, version or checksum wrong.
    Invalid(&'static str),
}

/// Parses the page at the start of `b` and returns it with its total length. Checksums are
/// verified: a page that fails its CRC is corruption, not audio.
pub(crate) fn parse_page(b: &[u8]) -> Result<(Page<'_>, usize), PageError> {
    let header = b.get(..HEADER_LEN).ok_or(PageError::Truncated)?;
    if &header[..4] != b"OggS" {
        return Err(PageError::Invalid("missing OggS capture pattern"));
    }
    if header[4] != 0 {
        return Err(PageError::Invalid("unknown Ogg version"));
    }
    let segments = usize::from(header[26]);
    let lacing = b.get(HEADER_LEN..HEADER_LEN + segments).ok_or(PageError::Truncated)?;
    let body_len: usize = lacing.iter().map(|&v| usize::from(v)).sum();
    let total = HEADER_LEN + segments + body_len;
    let page = b.get(..total).ok_or(PageError::Truncated)?;
    let stored = u32::from_le_bytes([header[22], header[23], header[24], header[25]]);
    let crc = crc32_update(crc32_update(crc32(&page[..22]), &[0; 4]), &page[26..]);
    if crc != stored {
        return Err(PageError::Invalid("page checksum mismatch"));
    }
    let le_u32 = |at: usize| u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
    let mut granule = [0u8; 8];
    granule.copy_from_slice(&header[6..14]);
    Ok((
        Page {
            header_type: header[5],
            granule: u64::from_le_bytes(granule),
            serial: le_u32(14),
            lacing,
            body: &page[HEADER_LEN + segments..],
        },
        total,
    ))
}

/// Writes Ogg pages for one logical stream.
#[derive(Debug)]
pub(crate) struct PageWriter {
    serial: u32,
    sequence: u32,
    out: Vec<u8>,
}

impl PageWriter {
    pub(crate) fn new(serial: u32) -> Self {
        PageWriter {
            serial,
            sequence: 0,
            out: Vec::new(),
        }
    }

    /// Appends one page holding `packets` whole. Callers keep pages within the 255-segment
    /// limit; packets here are far smaller than a page.
    pub(crate) fn page(&mut self, header_type: u8, granule: u64, packets: &[&[u8]]) {
        let mut lacing = Vec::new();
        for packet in packets {
            lacing.extend(std::iter::repeat_n(255u8, packet.len() / 255));
            lacing.push((packet.len() % 255) as u8);
        }
        let start = self.out.len();
        self.out.extend_from_slice(b"OggS");
        self.out.push(0);
        self.out.push(header_type);
        self.out.extend_from_slice(&granule.to_le_bytes());
        self.out.extend_from_slice(&self.serial.to_le_bytes());
        self.out.extend_from_slice(&self.sequence.to_le_bytes());
        self.out.extend_from_slice(&[0; 4]);
        self.out.push(lacing.len() as u8);
        self.out.extend_from_slice(&lacing);
        for packet in packets {
            self.out.extend_from_slice(packet);
        }
        let crc = crc32(&self.out[start..]);
        self.out[start + 22..start + 26].copy_from_slice(&crc.to_le_bytes());
        self.sequence += 1;
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_reference_check_value() {
        // CRC-32/MPEG-2 differs from Ogg's only by its initial value; Ogg's (init 0, no xorout)
        // check value for "123456789" is 0x89A1897F.
        assert_eq!(crc32(b"123456789"), 0x89A1_897F);
    }

    #[test]
    fn written_pages_parse_back() {
        let mut writer = PageWriter::new(7);
        writer.page(BOS, 0, &[b"first"]);
        let long = vec![9u8; 600];
        writer.page(EOS, 960, &[&long, b"x"]);
        let bytes = writer.finish();
        let (first, len) = parse_page(&bytes).unwrap();
        assert_eq!(first.header_type, BOS);
        assert_eq!(first.serial, 7);
        assert_eq!(first.segments().collect::<Vec<_>>(), vec![(&b"first"[..], true)]);
        let (second, len2) = parse_page(&bytes[len..]).unwrap();
        assert_eq!(len + len2, bytes.len());
        assert_eq!(
            u32::from_le_bytes(bytes[len + 18..len + 22].try_into().unwrap()),
            1,
            "page sequence"
        );
        assert_eq!(second.granule, 960);
        let packets: Vec<_> = second.segments().map(|(p, _)| p.len()).collect();
        assert_eq!(packets, vec![600, 1]);
    }

    #[test]
    fn flipped_bit_fails_the_checksum_and_cut_page_is_truncated() {
        let mut writer = PageWriter::new(1);
        writer.page(BOS, 0, &[b"payload"]);
        let mut bytes = writer.finish();
        assert_eq!(parse_page(&bytes[..bytes.len() - 1]).unwrap_err(), PageError::Truncated);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(
            parse_page(&bytes).unwrap_err(),
            PageError::Invalid("page checksum mismatch")
        );
    }
}
