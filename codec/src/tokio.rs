//! `tokio_util::codec` support (feature `tokio`): use [`FrameCodec`] with `Framed`.
//!
//! The codec works at the frame layer (spec §2): it yields [`Frame`]s and writes them. Drive a
//! [`crate::session::ServerSession`] or [`crate::session::ClientSession`] for the protocol, or
//! use [`crate::message::decode`] on each frame.
//!
//! ```
//! use bytes::BytesMut;
//! use tokio_util::codec::{Decoder, Encoder};
//! use echowire_codec::frame::{Flags, Frame, MessageType};
//! use echowire_codec::tokio::FrameCodec;
//!
//! let mut codec = FrameCodec::new(1 << 20);
//! let mut buf = BytesMut::new();
//! codec.encode(Frame::new(1, MessageType::Ping, Flags::NONE, 9, vec![0; 8].into()), &mut buf).unwrap();
//! let frame = codec.decode(&mut buf).unwrap().unwrap();
//! assert_eq!(frame.header.request_id, 9);
//! ```

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::decoder::FrameDecoder;
use crate::error::DecodeError;
use crate::frame::Frame;

/// Errors of [`FrameCodec`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The peer's bytes are not valid framing.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// I/O failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A `Decoder`/`Encoder` of Echowire frames.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    decoder: FrameDecoder,
}

impl FrameCodec {
    /// A codec that rejects frames whose `Length` exceeds `max_frame_size`.
    pub fn new(max_frame_size: u32) -> Self {
        FrameCodec {
            decoder: FrameDecoder::new(max_frame_size),
        }
    }

    /// Starts offsets after a preface that was consumed elsewhere.
    pub fn after_preface(mut self) -> Self {
        self.decoder = self.decoder.with_offset(crate::frame::PREFACE.len() as u64);
        self
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        let frame = self.decoder.decode(src)?;
        if frame.is_none() {
            // The claimed length was already checked against the limit, so this reserve is
            // bounded; it happens at most once per incomplete frame.
            src.reserve(self.decoder.bytes_needed(src));
        }
        Ok(frame)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        Ok(self.decoder.decode_eof(src)?)
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.reserve(frame.encoded_len());
        frame.encode(dst);
        Ok(())
    }
}
