//! Framing of every stored value: a format byte, a CRC-32 of the payload, the payload.
//!
//! The checksum is verified on every read, so a value damaged on disk is reported as data loss
//! instead of being decoded into something plausible and served.
use prost::Message;

use super::StoreError;

/// Format byte of the current framing; bumped if the layout of a frame ever changes.
const FORMAT: u8 = 1;
/// Bytes before the payload: the format byte and the CRC-32.
pub const HEADER: usize = 5;

/// Encodes a message into a checksummed frame.
pub fn frame<M: Message>(msg: &M) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + msg.encoded_len());
    out.push(FORMAT);
    out.extend_from_slice(&[0; 4]);
    // Encoding into a Vec cannot run out of space.
    msg.encode(&mut out).expect("Vec grows as needed");
    let crc = crc32fast::hash(&out[HEADER..]);
    out[1..HEADER].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Checks a frame and decodes its payload. `what` names the value in the error.
pub fn unframe<M: Message + Default>(
    bytes: &[u8],
    what: impl FnOnce() -> String,
) -> Result<M, StoreError> {
    let corrupt = |why: &str, what: String| StoreError::Corrupt(format!("{what}: {why}"));
    match payload(bytes) {
        Ok(p) => M::decode(p).map_err(|e| corrupt(&format!("undecodable ({e})"), what())),
        Err(why) => Err(corrupt(why, what())),
    }
}

/// Checks a frame and returns its payload, still encoded.
pub fn checked(bytes: &[u8], what: impl FnOnce() -> String) -> Result<&[u8], StoreError> {
    payload(bytes).map_err(|why| StoreError::Corrupt(format!("{}: {why}", what())))
}

fn payload(bytes: &[u8]) -> Result<&[u8], &'static str> {
    if bytes.len() < HEADER || bytes[0] != FORMAT {
        return Err("unknown frame format");
    }
    let stored = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    let payload = &bytes[HEADER..];
    if crc32fast::hash(payload) != stored {
        return Err("checksum mismatch");
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::PublishResponse;

    #[test]
    fn round_trip_and_every_flipped_bit_is_caught() {
        let msg = PublishResponse {
            id: "x".into(),
            revision: 3,
            sequence: 9,
            ..Default::default()
        };
        let framed = frame(&msg);
        let back: PublishResponse = unframe(&framed, || "t".into()).unwrap();
        assert_eq!(back, msg);
        for i in 0..framed.len() * 8 {
            let mut bad = framed.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(
                unframe::<PublishResponse>(&bad, || "t".into()).is_err(),
                "bit {i}"
            );
        }
    }
}
