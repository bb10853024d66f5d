//! Any byte string given to the update decoder either yields a valid update, which then
//! applies without writing out of bounds, or a typed error. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strom::sharing::{codec, MessageView};

fuzz_target!(|data: &[u8]| {
    // Trust the message's own parameter count (capped) so valid-looking messages get deep.
    let n = match codec::peek_header(data) {
        Ok(h) => (h.params as usize).min(1 << 16),
        Err(_) => data.len(),
    };
    if let Ok(view) = MessageView::parse(data, n) {
        let mut params = vec![0.0f32; n];
        view.subtract_from(&mut params, 1.0);
        assert!(params.iter().all(|p| p.is_finite()));
    }
});
