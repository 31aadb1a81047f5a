//! `ruse kill ID SIGNAL`: the signal parser. It must never panic, and what it accepts must be
//! a signal the kernel knows (1–64).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The command line hands the parser a String (clap refuses invalid UTF-8).
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = ruse::signal::parse(s) {
        assert!((1..=64).contains(&n), "{s:?} parsed as signal {n}");
    }
});
