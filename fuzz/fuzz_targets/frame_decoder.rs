//! Any byte stream, fed in arbitrary chunks, either yields frames whose lengths add up or a
//! clean error; never a panic, and never an allocation bigger than the bytes received.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tars_proto::frame::FrameDecoder;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, stream)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let mut dec = FrameDecoder::with_max_frame(64 * 1024).expect("valid limit");
    let mut buf = BytesMut::new();
    let mut consumed = 0usize;
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(body)) => consumed += body.len() + 4,
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(buf.capacity() <= stream.len() + 64 * 1024 + 4096, "reserved far more than received");
    }
    assert_eq!(consumed + buf.len(), stream.len());
});
