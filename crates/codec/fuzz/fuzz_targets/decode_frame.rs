//! Feeds arbitrary bytes to `decode_frame` until it needs more input or fails.
//!
//! Oracles beyond "no panic": a returned frame consumed input, `Ok(None)` consumed none,
//! and re-encoding is stable (decode, encode, decode, encode gives the same bytes twice;
//! the first encoding may differ from the input where the input was non-canonical,
//! e.g. a boolean octet of 2 or a non-zero header weight).
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_codec::bytes::BytesMut;
use warren_codec::{Frame, decode_frame};

fn encode(frame: &Frame) -> BytesMut {
    let mut buf = BytesMut::new();
    frame.encode(&mut buf);
    buf
}

fn check(data: &[u8], frame_max: u32) {
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        match decode_frame(&mut buf, frame_max) {
            Ok(Some(frame)) => {
                assert!(buf.len() < before, "a frame consumed nothing");
                let first = encode(&frame);
                let mut again = first.clone();
                let reparsed = decode_frame(&mut again, 0);
                let Ok(Some(reparsed)) = reparsed else {
                    panic!("re-encoded frame does not decode: {reparsed:?}");
                };
                assert!(again.is_empty(), "re-encoded frame left bytes over");
                assert_eq!(encode(&reparsed), first, "encoding is not stable");
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) consumed input");
                break;
            }
            Err(_) => break,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data, 131_072);
    check(data, 0);
});
