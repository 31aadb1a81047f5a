//! `ruse pause` and `ruse resume`: freeze and thaw every process of a container through its
//! cgroup's freezer; `state` then says `paused`.

use super::Globals;
use crate::container::{Container, Lock};
use crate::errors::RuseError;
use crate::state::Status;
use anyhow::{bail, Result};

pub fn pause(g: &Globals, id: &str) -> Result<()> {
    let (c, f) = Container::open_existing(&g.root, id, Lock::Exclusive)?;
    let status = f.status(&c.dir);
    if !matches!(status, Status::Running | Status::Created) {
        return Err(RuseError::WrongStatus("pause", status.as_str()).into());
    }
    if f.cgroup.dirs.is_empty() {
        bail!("container has no cgroup to freeze");
    }
    crate::cgroups::freeze::set(&f.cgroup, true)
}

pub fn resume(g: &Globals, id: &str) -> Result<()> {
    let (c, f) = Container::open_existing(&g.root, id, Lock::Exclusive)?;
    let status = f.status(&c.dir);
    if status != Status::Paused {
        return Err(RuseError::WrongStatus("resume", status.as_str()).into());
    }
    crate::cgroups::freeze::set(&f.cgroup, false)
}
