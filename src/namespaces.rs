//! The namespace plan: which namespaces the clone creates, which init joins by path and in
//! what order, which it creates itself afterwards, and which the parent must arrange before
//! cloning (pid and time only take effect for children). Pure and unit-tested; `launch` and
//! `init` apply it.
//!
//! Three shapes, chosen by where the user namespace comes from (runc's nsexec has the same):
//! - no user namespace, or a new one and nothing init must join: one clone makes every new
//!   namespace at once (the fast path; the parent writes the maps before init execs);
//! - a user namespace joined by path: init joins it (and the others, see init/join.rs), then
//!   unshares the new ones, so that the joined user namespace owns them;
//! - a new user namespace and namespaces joined by path (a `ip netns add` network namespace,
//!   say): init joins those first, with the runtime's privileges (which a new user namespace
//!   would not have over them), then unshares the user namespace, has the parent write its
//!   maps, and only then unshares the other new ones, which the new user namespace owns.
//!
//! A new pid namespace made by init applies to its children only: init then forks into it.

use anyhow::Result;
use oci_spec::runtime::{LinuxNamespaceType as T, Spec};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsPlan {
    /// CLONE_NEW* flags for the clone that makes init.
    pub clone_flags: u64,
    /// The parent enters this pid namespace (for its children) around the clone.
    pub parent_join_pid: Option<PathBuf>,
    /// The parent unshares a time namespace and writes the offsets before the clone.
    pub new_time: bool,
    /// Namespaces init joins with setns: in list order with the mount namespace after the
    /// others (joining it changes init's root) and the user namespace last (init moves the
    /// ones the joined user namespace owns after it, see init/join.rs).
    pub init_join: Vec<(String, PathBuf)>,
    /// Init unshares the new user namespace itself, after `init_join`, and asks the parent to
    /// write its maps (the third shape above).
    pub init_new_user: bool,
    /// CLONE_NEW* flags init unshares after joining (and after its own user namespace): the
    /// namespaces a joined or late user namespace must own, and the cgroup namespace, which
    /// must start after init is in its cgroup. A pid namespace among them only applies to
    /// children: init then forks once into it (`forks`).
    pub init_unshare: u64,
    pub new_user: bool,
    pub new_net: bool,
}

pub fn flag(t: T) -> u64 {
    (match t {
        T::Pid => libc::CLONE_NEWPID,
        T::Network => libc::CLONE_NEWNET,
        T::Mount => libc::CLONE_NEWNS,
        T::Ipc => libc::CLONE_NEWIPC,
        T::Uts => libc::CLONE_NEWUTS,
        T::User => libc::CLONE_NEWUSER,
        T::Cgroup => libc::CLONE_NEWCGROUP,
        T::Time => libc::CLONE_NEWTIME,
    }) as u64
}

/// The name used in `/proc/<pid>/ns/<name>`.
pub fn proc_name(t: T) -> &'static str {
    match t {
        T::Pid => "pid",
        T::Network => "net",
        T::Mount => "mnt",
        T::Ipc => "ipc",
        T::Uts => "uts",
        T::User => "user",
        T::Cgroup => "cgroup",
        T::Time => "time",
    }
}

/// The CLONE_NEW* flag of a `/proc/<pid>/ns/<name>` name (`proc_name`'s inverse).
pub fn flag_of_proc_name(name: &str) -> Option<u64> {
    [
        T::Pid,
        T::Network,
        T::Mount,
        T::Ipc,
        T::Uts,
        T::User,
        T::Cgroup,
        T::Time,
    ]
    .into_iter()
    .find(|t| proc_name(*t) == name)
    .map(flag)
}

pub fn plan(spec: &Spec) -> Result<NsPlan> {
    let mut p = NsPlan::default();
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let user = list.iter().find(|n| n.typ() == T::User);
    let joins_user = user.is_some_and(|u| u.path().is_some());
    // The parent joins a pid namespace by path itself; everything else by path is init's.
    let init_joins = list
        .iter()
        .any(|n| n.path().is_some() && !matches!(n.typ(), T::Pid | T::User));
    let late_user = user.is_some_and(|u| u.path().is_none()) && init_joins;
    // New namespaces that a joined or late user namespace must own are made after it.
    let after_user = joins_user || late_user;
    let (mut user_join, mut mount_join) = (None, None);
    for ns in &list {
        let t = ns.typ();
        match (ns.path(), t) {
            (Some(path), T::Pid) => p.parent_join_pid = Some(path.clone()),
            (Some(path), T::User) => user_join = Some(path.clone()),
            (Some(path), T::Mount) => mount_join = Some(path.clone()),
            (Some(path), _) => p.init_join.push((proc_name(t).to_string(), path.clone())),
            (None, T::Time) => p.new_time = true,
            // Unshared by init after the parent has moved it into its cgroup, so the new
            // namespace is rooted at the container's cgroup (as runc does).
            (None, T::Cgroup) => p.init_unshare |= flag(t),
            (None, T::User) if late_user => p.init_new_user = true,
            (None, _) if after_user => p.init_unshare |= flag(t),
            (None, _) => p.clone_flags |= flag(t),
        }
        if ns.path().is_none() {
            p.new_user |= t == T::User;
            p.new_net |= t == T::Network;
        }
    }
    if let Some(path) = mount_join {
        p.init_join.push(("mnt".to_string(), path));
    }
    if let Some(path) = user_join {
        p.init_join.push(("user".to_string(), path));
    }
    Ok(p)
}

impl NsPlan {
    /// Init unshares a pid namespace and must fork to enter it (the new process becomes pid 1
    /// and the runtime's child: the `Forked`/`Adopted` exchange of channel.rs).
    pub fn forks(&self) -> bool {
        self.init_unshare & libc::CLONE_NEWPID as u64 != 0
    }

    /// The container gets a mount namespace of its own, new or joined.
    pub fn has_mount(&self) -> bool {
        (self.clone_flags | self.init_unshare) & libc::CLONE_NEWNS as u64 != 0 || self.joins("mnt")
    }

    /// Init joins a namespace of this `/proc/<pid>/ns` name by path.
    pub fn joins(&self, name: &str) -> bool {
        self.init_join.iter().any(|(n, _)| n == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ns: &str) -> Spec {
        serde_json::from_str(&format!(
            r#"{{"ociVersion":"1.0.2","linux":{{"namespaces":{ns}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn proc_names_map_back_to_flags() {
        assert_eq!(flag_of_proc_name("net"), Some(libc::CLONE_NEWNET as u64));
        assert_eq!(flag_of_proc_name("user"), Some(libc::CLONE_NEWUSER as u64));
        assert_eq!(flag_of_proc_name("network"), None);
    }

    #[test]
    fn new_namespaces_go_in_the_clone() {
        let p = plan(&spec(
            r#"[{"type":"pid"},{"type":"network"},{"type":"mount"},{"type":"user"}]"#,
        ))
        .unwrap();
        let want =
            libc::CLONE_NEWPID | libc::CLONE_NEWNET | libc::CLONE_NEWNS | libc::CLONE_NEWUSER;
        assert_eq!(p.clone_flags, want as u64);
        assert!(p.new_user && p.new_net && !p.new_time);
        assert!(p.init_join.is_empty());
    }

    #[test]
    fn joined_pid_and_time_are_parent_side() {
        let p = plan(&spec(
            r#"[{"type":"pid","path":"/proc/1/ns/pid"},{"type":"time"}]"#,
        ))
        .unwrap();
        assert_eq!(
            p.parent_join_pid.as_deref(),
            Some(std::path::Path::new("/proc/1/ns/pid"))
        );
        assert!(p.new_time);
        assert_eq!(p.clone_flags, 0);
    }

    #[test]
    fn joined_user_goes_last_and_new_ones_are_unshared_after_it() {
        let p = plan(&spec(
            r#"[{"type":"user","path":"/u"},{"type":"network","path":"/n"},{"type":"uts"}]"#,
        ))
        .unwrap();
        let names: Vec<&str> = p.init_join.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["net", "user"]);
        assert_eq!(p.init_unshare, libc::CLONE_NEWUTS as u64);
        assert_eq!(p.clone_flags, 0);
        assert!(!p.forks());
        // A new pid namespace must belong to the joined user namespace: unshared by init
        // after joining it, which then forks into it.
        let p = plan(&spec(r#"[{"type":"user","path":"/u"},{"type":"pid"}]"#)).unwrap();
        assert_eq!(p.init_unshare, libc::CLONE_NEWPID as u64);
        assert_eq!(p.clone_flags, 0);
        assert!(p.forks());
    }

    #[test]
    fn new_user_with_joined_namespaces_is_made_by_init_between_them() {
        // runc's nsexec order: join by path with the runtime's privileges, then the new user
        // namespace, then the new namespaces it must own.
        let p = plan(&spec(
            r#"[{"type":"user"},{"type":"network","path":"/n"},{"type":"ipc","path":"/i"},
                {"type":"mount"},{"type":"pid"},{"type":"uts"}]"#,
        ))
        .unwrap();
        assert_eq!(p.clone_flags, 0);
        assert!(p.init_new_user && p.new_user && !p.new_net);
        let names: Vec<&str> = p.init_join.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["net", "ipc"]);
        let want = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS;
        assert_eq!(p.init_unshare, want as u64);
        assert!(p.forks() && p.has_mount());
    }

    #[test]
    fn new_user_with_only_a_joined_pid_namespace_keeps_the_single_clone() {
        let p = plan(&spec(
            r#"[{"type":"user"},{"type":"pid","path":"/p"},{"type":"network"},{"type":"mount"}]"#,
        ))
        .unwrap();
        assert!(!p.init_new_user && p.init_join.is_empty());
        let want = libc::CLONE_NEWUSER | libc::CLONE_NEWNET | libc::CLONE_NEWNS;
        assert_eq!(p.clone_flags, want as u64);
    }

    #[test]
    fn a_joined_mount_namespace_is_joined_after_the_others_and_before_user() {
        let p = plan(&spec(
            r#"[{"type":"mount","path":"/m"},{"type":"user","path":"/u"},{"type":"uts","path":"/t"}]"#,
        ))
        .unwrap();
        let names: Vec<&str> = p.init_join.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["uts", "mnt", "user"]);
        assert!(p.has_mount() && p.joins("mnt"));
        let p = plan(&spec(r#"[{"type":"pid"}]"#)).unwrap();
        assert!(!p.has_mount());
    }
}
