//! A subscriber that keeps each feed message as its raw bytes: the load generator must not
//! spend the shared cores decoding a million messages a second, only read the sequence number
//! at the front of each.
use bytes::{Buf, Bytes};
use http::uri::PathAndQuery;
use prost::Message;
use tonic::{
    Status, Streaming,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::Channel,
};

use crate::domain::budget::MESSAGE_CEILING;
use crate::pb;

/// Encodes the request with prost; hands each response message back undecoded.
#[derive(Clone, Copy, Default)]
pub struct RawCodec;

pub struct RequestEncoder;
pub struct BytesDecoder;

impl Codec for RawCodec {
    type Encode = pb::SubscribeRequest;
    type Decode = Bytes;
    type Encoder = RequestEncoder;
    type Decoder = BytesDecoder;
    fn encoder(&mut self) -> RequestEncoder {
        RequestEncoder
    }
    fn decoder(&mut self) -> BytesDecoder {
        BytesDecoder
    }
}

impl Encoder for RequestEncoder {
    type Item = pb::SubscribeRequest;
    type Error = Status;
    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding the request: {e}")))
    }
}

impl Decoder for BytesDecoder {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n)))
    }
}

/// Opens a feed subscription on `channel` whose messages arrive as raw bytes.
pub async fn subscribe(
    channel: Channel,
    request: pb::SubscribeRequest,
) -> anyhow::Result<Streaming<Bytes>> {
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(MESSAGE_CEILING);
    grpc.ready().await?;
    let response = grpc
        .server_streaming(
            tonic::Request::new(request),
            PathAndQuery::from_static("/cbm.v1.Feed/Subscribe"),
            RawCodec,
        )
        .await?;
    Ok(response.into_inner())
}

/// The sequence number of an encoded `FeedEvent`, and whether it is a change (not a
/// heartbeat). Field 1 (the sequence) is encoded first; a change is field 2.
pub fn sequence_of(msg: &[u8]) -> Option<(u64, bool)> {
    let mut buf = msg;
    if buf.first() != Some(&0x08) {
        return None;
    }
    buf.advance(1);
    let seq = prost::encoding::decode_varint(&mut buf).ok()?;
    Some((seq, buf.first() == Some(&0x12)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::wire::{Event, FeedEvent, FeedEventFields};

    #[test]
    fn reads_the_sequence_and_kind_of_encoded_events() {
        let change = FeedEventFields {
            sequence: 300_000,
            event: Some(Event::Change(Box::default())),
        };
        let beat = FeedEventFields {
            sequence: 7,
            event: Some(Event::Heartbeat(pb::Heartbeat::default())),
        };
        assert_eq!(
            sequence_of(&FeedEvent::encode_once(&change)),
            Some((300_000, true))
        );
        assert_eq!(
            sequence_of(&FeedEvent::encode_once(&beat)),
            Some((7, false))
        );
        assert_eq!(sequence_of(&[]), None);
    }
}
