//! A container's home on disk: `<root>/<id>/`, made with an atomic `mkdir` (so two creates of
//! one id cannot both win), locked with `flock` on the directory itself for every command
//! (exclusive to change, shared to read), and `state.json` replaced atomically (temp + rename).

use crate::errors::RuseError;
use crate::state::Facts;
use anyhow::{Context, Result};
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

const STATE_FILE: &str = "state.json";
const MAX_ID_LEN: usize = 200;

/// Lock mode a command needs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    Shared,
    Exclusive,
}

pub struct Container {
    pub id: String,
    pub dir: PathBuf,
    /// Held for the life of the command; the flock goes with it.
    _lock: File,
    pub facts: Option<Facts>,
}

/// runc's rule: `^[\w+\-.]+$`, not `.` or `..`; bounded so `<id>/state.json.tmp` fits NAME_MAX.
pub fn validate_id(id: &str) -> Result<()> {
    let ok_chars = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if id.is_empty() || !ok_chars || id == "." || id == ".." || id.len() > MAX_ID_LEN {
        return Err(RuseError::InvalidId(id.to_string()).into());
    }
    Ok(())
}

/// The state root: `--root`, else `$XDG_RUNTIME_DIR/ruse` for a rootless caller, else
/// /run/ruse. Rootless is runc's rule (podman relies on it): a non-root user, or root of a
/// user namespace that is not the user "root" (podman's rootless mode).
pub fn default_root() -> PathBuf {
    runtime_dir("ruse")
}

/// `/run/<name>`, or `$XDG_RUNTIME_DIR/<name>` where the state root would be there too.
pub fn runtime_dir(name: &str) -> PathBuf {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty());
    if let Some(x) = xdg.filter(|_| honor_xdg()) {
        return PathBuf::from(x).join(name);
    }
    PathBuf::from("/run").join(name)
}

fn honor_xdg() -> bool {
    if crate::sys::process::geteuid() != 0 {
        return true;
    }
    crate::userns::in_user_namespace() && std::env::var("USER").map_or(true, |u| u != "root")
}

/// Names of state dirs still being made (see `create_new`); `~` is never in an id.
const TMP_PREFIX: &str = "~";

fn same_inode(a: &libc::stat, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.st_dev == b.dev() && a.st_ino == b.ino()
}

fn lock_dir(dir: &Path, mode: Lock) -> std::io::Result<File> {
    let f = File::open(dir)?;
    crate::sys::fs::flock(f.as_fd(), mode == Lock::Exclusive)?;
    Ok(f)
}

impl Container {
    /// Makes the state dir of a new container and locks it; fails if the id exists.
    ///
    /// The directory is made and locked under a temporary name (never a valid id, so `list`
    /// skips it) and renamed into place without replacing anything: `<root>/<id>` appears
    /// already locked. A plain mkdir-then-flock would leave a moment in which a `delete`
    /// could lock the new directory, find no state.json, take it for a dead create and
    /// remove it under the create's feet.
    pub fn create_new(root: &Path, id: &str) -> Result<Container> {
        validate_id(id)?;
        use std::os::unix::fs::DirBuilderExt;
        // Private, as runc's: state.json holds the whole config, env secrets included.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .with_context(|| format!("create state root {}", root.display()))?;
        let dir = root.join(id);
        if dir.exists() {
            return Err(RuseError::Exists(id.to_string()).into());
        }
        let tmp = root.join(format!("{TMP_PREFIX}{id}~{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::DirBuilder::new()
            .mode(0o711)
            .create(&tmp)
            .with_context(|| format!("create state dir {}", tmp.display()))?;
        let placed = lock_dir(&tmp, Lock::Exclusive)
            .with_context(|| format!("lock {}", tmp.display()))
            .and_then(|lock| match crate::sys::fs::rename_noreplace(&tmp, &dir) {
                Ok(()) => Ok(lock),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    Err(RuseError::Exists(id.to_string()).into())
                }
                Err(e) => Err(e).with_context(|| format!("create state dir {}", dir.display())),
            });
        let lock = match placed {
            Ok(l) => l,
            Err(e) => {
                let _ = fs::remove_dir(&tmp);
                return Err(e);
            }
        };
        Ok(Container {
            id: id.to_string(),
            dir,
            _lock: lock,
            facts: None,
        })
    }

    /// Opens and locks an existing container. `facts` is None when its create never finished.
    pub fn open(root: &Path, id: &str, mode: Lock) -> Result<Container> {
        validate_id(id)?;
        let dir = root.join(id);
        let lock = loop {
            let lock = match lock_dir(&dir, mode) {
                Ok(l) => l,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(RuseError::NotFound(id.to_string()).into())
                }
                Err(e) => return Err(e).with_context(|| format!("lock {}", dir.display())),
            };
            // While we waited for the lock a delete may have removed the directory, and a
            // create may have put a new one in its place: the lock must be on what the path
            // names now.
            match (crate::sys::fs::fstat(lock.as_fd()), fs::metadata(&dir)) {
                (Ok(held), Ok(now)) if same_inode(&held, &now) => break lock,
                (_, Ok(_)) => continue,
                _ => return Err(RuseError::NotFound(id.to_string()).into()),
            }
        };
        let facts = match fs::read(dir.join(STATE_FILE)) {
            Ok(b) => Some(
                serde_json::from_slice(&b)
                    .with_context(|| format!("parse {}/{STATE_FILE}", dir.display()))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(e).with_context(|| format!("read {}/{STATE_FILE}", dir.display()))
            }
        };
        Ok(Container {
            id: id.to_string(),
            dir,
            _lock: lock,
            facts,
        })
    }

    /// Removes what creates of `id` killed before their directory got its name left behind
    /// (see `create_new`): temporary directories whose create is dead and that nobody holds
    /// locked. They hold nothing yet.
    pub fn sweep_unnamed(root: &Path, id: &str) {
        let prefix = format!("{TMP_PREFIX}{id}~");
        let Ok(rd) = fs::read_dir(root) else { return };
        for e in rd.filter_map(|e| e.ok()) {
            let name = e.file_name();
            let rest = name.to_str().and_then(|n| n.strip_prefix(&prefix));
            let Some(pid) = rest.filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            // A live create holds no lock between its mkdir and its flock: only the
            // directories of creates that are gone may go.
            if Path::new("/proc").join(pid).exists() {
                continue;
            }
            let path = e.path();
            let unlocked = File::open(&path)
                .is_ok_and(|f| crate::sys::fs::try_lock(f.as_fd()).unwrap_or(false));
            if unlocked {
                let _ = fs::remove_dir_all(&path);
            }
        }
    }

    /// Like `open`, but a container whose create never finished counts as missing.
    pub fn open_existing(root: &Path, id: &str, mode: Lock) -> Result<(Container, Facts)> {
        let mut c = Container::open(root, id, mode)?;
        match c.facts.take() {
            Some(f) => Ok((c, f)),
            None => Err(RuseError::NotFound(id.to_string()).into()),
        }
    }

    /// Writes `state.json` atomically: readers see the old or the new file, never a torn one.
    pub fn save(&mut self, facts: Facts) -> Result<()> {
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let data = serde_json::to_vec(&facts).context("serialise state")?;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("write {}", tmp.display()))?;
        f.write_all(&data)
            .with_context(|| format!("write {}", tmp.display()))?;
        fs::rename(&tmp, self.dir.join(STATE_FILE))
            .with_context(|| format!("rename {}", tmp.display()))?;
        self.facts = Some(facts);
        Ok(())
    }

    /// Removes the state dir; the lock is released when `self` drops.
    pub fn remove(self) -> Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("remove {}", self.dir.display()))
            }
            _ => Ok(()),
        }
    }
}

/// Ids of every container under `root` (entries may vanish while we look).
pub fn list_ids(root: &Path) -> Result<Vec<String>> {
    let rd = match fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("read {}", root.display())),
    };
    let mut ids: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|id| validate_id(id).is_ok())
        .collect();
    ids.sort();
    Ok(ids)
}

/// Reads facts without locking (for `list`): state.json is replaced atomically.
pub fn peek_facts(root: &Path, id: &str) -> Option<Facts> {
    serde_json::from_slice(&fs::read(root.join(id).join(STATE_FILE)).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_like_runc() {
        for ok in ["a", "c1", "A-b_c.d+e", "x".repeat(200).as_str()] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a b",
            "é",
            "a\0b",
            "x".repeat(1024).as_str(),
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn exclusive_create_and_atomic_save() {
        let root = std::env::temp_dir().join(format!("ruse-ut-{}", std::process::id()));
        let c = Container::create_new(&root, "x1").unwrap();
        let err = Container::create_new(&root, "x1").err().unwrap();
        assert!(err.to_string().contains("exists"), "{err}");
        drop(c);
        let c = Container::open(&root, "x1", Lock::Shared).unwrap();
        assert!(c.facts.is_none());
        c.remove().unwrap();
        let err = Container::open(&root, "x1", Lock::Shared).err().unwrap();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let _ = fs::remove_dir_all(&root);
    }

    /// The directory appears under its name already locked, and what killed creates leave
    /// unnamed is swept unless its create is alive or something still holds it.
    #[test]
    fn named_only_once_locked_and_unnamed_leftovers_swept() {
        let root = std::env::temp_dir().join(format!("ruse-ut-sweep-{}", std::process::id()));
        let c = Container::create_new(&root, "y1").unwrap();
        let held = File::open(&c.dir).unwrap();
        assert!(!crate::sys::fs::try_lock(held.as_fd()).unwrap());
        assert_eq!(list_ids(&root).unwrap(), ["y1"]);
        // Pids above the kernel's pid_max limit (2^22) are dead; ours is live but unlocked,
        // as a create between its mkdir and its flock.
        let live = format!("~y1~{}", std::process::id());
        for n in [
            "~y1~4194399",
            "~y1~4194398",
            "~y1~abc",
            "~y10~3",
            live.as_str(),
        ] {
            fs::create_dir(root.join(n)).unwrap();
        }
        let busy = File::open(root.join("~y1~4194398")).unwrap();
        crate::sys::fs::flock(busy.as_fd(), true).unwrap();
        assert_eq!(
            list_ids(&root).unwrap(),
            ["y1"],
            "unnamed dirs are never listed"
        );
        Container::sweep_unnamed(&root, "y1");
        let mut left: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut want = vec!["y1", "~y10~3", "~y1~4194398", "~y1~abc", live.as_str()];
        want.sort();
        assert_eq!(left, want);
        let _ = fs::remove_dir_all(&root);
    }
}
