//! Encode + decode of a RequestPacket carrying 100 B, 1 KiB and 64 KiB of parameters,
//! framed as on the wire. Results: `bench/RESULTS.md`.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use tars_proto::codec::Struct;
use tars_proto::frame::{encode_frame, FrameDecoder};
use tars_proto::packet::{RequestPacket, StringMap};

fn request(payload: usize) -> RequestPacket {
    let mut context = StringMap::new();
    context.insert("node_name".into(), "10.0.0.1".into());
    RequestPacket {
        i_version: 1,
        c_packet_type: 0,
        i_message_type: 0,
        i_request_id: 123_456,
        s_servant_name: "Test.HelloServer.HelloObj".into(),
        s_func_name: "echo".into(),
        s_buffer: Bytes::from(vec![0x5a; payload]),
        i_timeout: 3000,
        context,
        status: StringMap::new(),
    }
}

/// Frames and decodes without copying: `sBuffer` stays a slice of `frame`.
fn decode(dec: &FrameDecoder, frame: &Bytes) -> RequestPacket {
    let (_, used) = dec.decode_slice(frame).expect("valid").expect("complete");
    RequestPacket::decode_bytes(&frame.slice(4..used)).expect("decodes")
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("request_packet");
    for (name, size) in [("100B", 100), ("1KiB", 1024), ("64KiB", 64 * 1024)] {
        let req = request(size);
        let frame = encode_frame(&req);
        g.throughput(Throughput::Bytes(frame.len() as u64));
        g.bench_with_input(BenchmarkId::new("encode", name), &req, |b, req| {
            b.iter(|| black_box(encode_frame(black_box(req))))
        });
        g.bench_with_input(BenchmarkId::new("decode", name), &frame, |b, frame| {
            let dec = FrameDecoder::new();
            b.iter(|| black_box(decode(&dec, black_box(frame))))
        });
        g.bench_with_input(BenchmarkId::new("encode_decode", name), &req, |b, req| {
            let dec = FrameDecoder::new();
            b.iter(|| black_box(decode(&dec, &encode_frame(black_box(req)))))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
