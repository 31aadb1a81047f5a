//! Container id validation (`create`, `run` and every lookup under the state root). It must
//! never panic, and an accepted id must be a single, harmless path component.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(id) = std::str::from_utf8(data) else {
        return;
    };
    if ruse::container::validate_id(id).is_ok() {
        assert!(!id.is_empty() && id != "." && id != "..", "{id:?} accepted");
        assert!(id.len() <= 200, "{} bytes accepted", id.len());
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b)),
            "{id:?} accepted"
        );
        let p = std::path::Path::new(id);
        assert_eq!(
            p.components().count(),
            1,
            "{id:?} is not one path component"
        );
        assert!(
            matches!(p.components().next(), Some(std::path::Component::Normal(_))),
            "{id:?} is not a plain name"
        );
    }
});
