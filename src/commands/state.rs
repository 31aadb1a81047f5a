//! `ruse state`: the OCI state JSON of one container.

use super::Globals;
use crate::container::{Container, Lock};
use anyhow::Result;

pub fn state(g: &Globals, id: &str) -> Result<()> {
    let (c, f) = Container::open_existing(&g.root, id, Lock::Shared)?;
    let st = f.oci_state(f.status(&c.dir));
    println!("{}", serde_json::to_string_pretty(&st)?);
    Ok(())
}
