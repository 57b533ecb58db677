//! Image reference parsing never panics, and what it accepts prints back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(r) = connector_build::model::ImageRef::parse(text) {
            let again = connector_build::model::ImageRef::parse(&r.to_string())
                .expect("a printed reference parses");
            assert_eq!(again, r);
        }
    }
});
