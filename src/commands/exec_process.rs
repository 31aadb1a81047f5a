//! The process `ruse exec` starts, as runc's getProcess builds it: read from `-p FILE`, or
//! the container's own `process` with the command and the flags applied. Pure.

use crate::cli::ExecArgs;
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{Process, Spec};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A process.json, with the position of syntax errors and the field path of type errors.
pub fn from_file(path: &Path) -> Result<Process> {
    let what = || format!("--process {}", path.display());
    let bytes = std::fs::read(path).with_context(what)?;
    let mut v: Value = serde_json::from_slice(&bytes).with_context(what)?;
    let Some(obj) = v.as_object_mut() else {
        bail!("{}: must be a JSON object", what());
    };
    // runc's process.user is a plain Go struct: absent means uid 0, gid 0.
    obj.entry("user")
        .or_insert_with(|| json!({"uid": 0, "gid": 0}));
    serde_path_to_error::deserialize(v)
        .map_err(|e| anyhow!("{}: {}: {}", what(), e.path(), e.inner()))
}

/// The container's process with `cmd` and the flags of `a` applied.
pub fn from_flags(a: &ExecArgs, cmd: &[String], config: &Spec) -> Result<Process> {
    if cmd.is_empty() {
        bail!("no command given: name one after the container id, or use --process");
    }
    let base = config
        .process()
        .as_ref()
        .context("process: missing in the container's config")?;
    let mut p = serde_json::to_value(base).context("encode process")?;
    p["args"] = json!(cmd);
    if let Some(cwd) = &a.cwd {
        p["cwd"] = json!(cwd);
    }
    p["env"] = json!(merge_env(p["env"].as_array(), &a.env)?);
    p["terminal"] = json!(a.tty);
    if a.no_new_privs {
        p["noNewPrivileges"] = json!(true);
    }
    if let Some(u) = &a.user {
        let (uid, gid) = parse_user(u)?;
        p["user"]["uid"] = json!(uid);
        if let Some(gid) = gid {
            p["user"]["gid"] = json!(gid);
        }
    }
    if !a.additional_gids.is_empty() {
        let mut gids: Vec<Value> = p["user"]["additionalGids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for g in &a.additional_gids {
            gids.push(json!(
                parse_id(g).with_context(|| format!("--additional-gids {g:?}"))?
            ));
        }
        p["user"]["additionalGids"] = json!(gids);
    }
    add_caps(&mut p, &a.cap)?;
    serde_json::from_value(p).context("exec process")
}

/// The config's env with each `--env KEY=value` replacing the variable of that name (or
/// added): a duplicated name would leave it to the program which one it reads.
fn merge_env(base: Option<&Vec<Value>>, extra: &[String]) -> Result<Vec<String>> {
    let mut env: Vec<String> = base
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    for e in extra {
        let key = match e.split_once('=') {
            Some((k, _)) if !k.is_empty() => k,
            _ => bail!("--env {e:?}: must be KEY=value with a non-empty KEY"),
        };
        let prefix = format!("{key}=");
        match env.iter_mut().find(|x| x.starts_with(&prefix)) {
            Some(slot) => *slot = e.clone(),
            None => env.push(e.clone()),
        }
    }
    Ok(env)
}

/// runc's `--cap`: into the bounding, effective and permitted sets, and ambient only when the
/// process has an inheritable set (ambient needs inheritable). `NET_ADMIN` means CAP_NET_ADMIN.
fn add_caps(p: &mut Value, caps: &[String]) -> Result<()> {
    if caps.is_empty() {
        return Ok(());
    }
    let has_inheritable = p["capabilities"]["inheritable"].is_array();
    for c in caps {
        let upper = c.to_ascii_uppercase();
        let name = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        if crate::caps::number(&name).is_none() {
            bail!("--cap {c:?}: unknown capability");
        }
        let mut sets = vec!["bounding", "effective", "permitted"];
        if has_inheritable {
            sets.push("ambient");
        }
        for set in sets {
            let list = &mut p["capabilities"][set];
            if !list.is_array() {
                *list = json!([]);
            }
            let arr = list.as_array_mut().expect("made an array above");
            if !arr.iter().any(|x| x.as_str() == Some(&name)) {
                arr.push(json!(name));
            }
        }
    }
    Ok(())
}

/// `--user uid[:gid]`: decimal ids a process can hold. (u32::MAX is (uid_t)-1, which
/// setresuid reads as "unchanged", so it is refused too.)
pub fn parse_user(u: &str) -> Result<(u32, Option<u32>)> {
    let (uid, gid) = match u.split_once(':') {
        Some((uid, gid)) => (uid, Some(gid)),
        None => (u, None),
    };
    let what = || format!("--user {u:?}: must be <uid>[:<gid>], decimal ids below 4294967295");
    let uid = parse_id(uid).with_context(what)?;
    let gid = gid.map(parse_id).transpose().with_context(what)?;
    Ok((uid, gid))
}

fn parse_id(s: &str) -> Result<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        bail!("{s:?} is not a decimal id");
    }
    match s.parse::<u32>() {
        Ok(n) if n != u32::MAX => Ok(n),
        _ => bail!("{s} is out of range"),
    }
}

/// The `--cgroup` flags: paths per v1 controller, and one for every other hierarchy.
#[derive(Debug, Default, PartialEq)]
pub struct CgroupFlags {
    pub default: Option<PathBuf>,
    pub per_controller: HashMap<String, PathBuf>,
}

pub fn parse_cgroup_flags(specs: &[String]) -> Result<CgroupFlags> {
    let mut out = CgroupFlags::default();
    for s in specs {
        let (ctrls, path) = match s.split_once(':') {
            Some((c, p)) => (Some(c), p),
            None => (None, s.as_str()),
        };
        let p = Path::new(path);
        let clean = !path.is_empty()
            && p.is_relative()
            && p.components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !clean {
            bail!(
                "--cgroup {s:?}: the path must be relative to the container's cgroup, without .."
            );
        }
        match ctrls.filter(|c| !c.is_empty()) {
            None => {
                if out.default.replace(p.to_path_buf()).is_some() {
                    bail!("--cgroup {s:?}: a path for every controller was given twice");
                }
            }
            Some(list) => {
                for c in list.split(',') {
                    if out
                        .per_controller
                        .insert(c.to_string(), p.to_path_buf())
                        .is_some()
                    {
                        bail!("--cgroup {s:?}: controller {c} given twice");
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_as_runc_but_strict() {
        assert_eq!(parse_user("1").unwrap(), (1, None));
        assert_eq!(parse_user("1:2").unwrap(), (1, Some(2)));
        assert_eq!(parse_user("0:0").unwrap(), (0, Some(0)));
        assert_eq!(parse_user("4294967294").unwrap(), (4294967294, None));
        for bad in [
            "abc",
            "1:",
            ":1",
            "-1",
            "4294967296",
            "4294967295",
            "1:2:3",
            "",
            " 1",
            "+1",
        ] {
            assert!(parse_user(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn env_overrides_and_appends() {
        let base = vec![json!("PATH=/bin"), json!("A=1")];
        let got = merge_env(Some(&base), &["A=2".into(), "B=x=y".into()]).unwrap();
        assert_eq!(got, ["PATH=/bin", "A=2", "B=x=y"]);
        for bad in ["NOEQ", "=x", "="] {
            assert!(merge_env(None, &[bad.into()]).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn caps_go_into_the_sets_runc_uses() {
        let mut p = json!({"capabilities": {"bounding": ["CAP_KILL"], "inheritable": []}});
        add_caps(&mut p, &["net_admin".into(), "CAP_KILL".into()]).unwrap();
        assert_eq!(
            p["capabilities"]["bounding"],
            json!(["CAP_KILL", "CAP_NET_ADMIN"])
        );
        assert_eq!(
            p["capabilities"]["permitted"],
            json!(["CAP_NET_ADMIN", "CAP_KILL"])
        );
        assert_eq!(
            p["capabilities"]["ambient"],
            json!(["CAP_NET_ADMIN", "CAP_KILL"])
        );
        let mut q = json!({});
        add_caps(&mut q, &["SYS_ADMIN".into()]).unwrap();
        assert!(q["capabilities"]["ambient"].is_null());
        assert!(add_caps(&mut q, &["CAP_BOGUS".into()]).is_err());
    }

    #[test]
    fn cgroup_flags() {
        let f = parse_cgroup_flags(&["sub".into(), "cpu,memory:a/b".into()]).unwrap();
        assert_eq!(f.default, Some(PathBuf::from("sub")));
        assert_eq!(f.per_controller["memory"], PathBuf::from("a/b"));
        assert_eq!(f.per_controller["cpu"], PathBuf::from("a/b"));
        assert_eq!(
            parse_cgroup_flags(&[":x".into()]).unwrap().default,
            Some(PathBuf::from("x"))
        );
        for bad in ["../x", "/abs", "", "a/../b", "cpu:"] {
            assert!(parse_cgroup_flags(&[bad.into()]).is_err(), "{bad:?}");
        }
        assert!(parse_cgroup_flags(&["a".into(), "b".into()]).is_err());
    }
}
