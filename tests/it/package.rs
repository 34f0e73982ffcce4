//! Installing tickstream as a system service (README, "Running in
//! production"; `packaging/`):
//!
//! - the package, built by `packaging/build-deb.sh`: lintian, `dpkg -i`, the
//!   installed files, users and modes, `systemd-analyze verify` and
//!   `security`, then `dpkg -r` and `dpkg -P`, each leaving what it should;
//! - the sandbox of `packaging/tickstream.service` against what the shipped
//!   binary really does: run under `strace -f` through everything a service
//!   does, every syscall must pass the unit's `SystemCallFilter=` (expanded
//!   by `systemd-analyze syscall-filter`), every socket's family its
//!   `RestrictAddressFamilies=`, and no call may need what its other
//!   settings take away;
//! - systemd's readiness protocol (`Type=notify`), on a datagram socket of
//!   the test's own: this one runs everywhere.
//!
//! The first two need root (for `dpkg` and the namespace), `dpkg-deb`,
//! `lintian`, `strace`, `systemd-analyze`, `unshare` and `redis-server`;
//! without them they say SKIPPED, and under `CI=true` they fail. The package
//! is installed in a throwaway copy of the system (overlays in a mount
//! namespace of the test's own), so the machine's own packages, users and
//! units never change, whatever it has installed. No running systemd is
//! needed: the maintainer scripts must work without one, as in a container.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::ErrorKind;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::nginx::skip_or_fail;
use crate::redis_server::{redis_available, Redis};
use crate::support::*;

/// The repository: the script, the unit.
const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// What the sandbox test's strace output and the package test's package
/// are built under: the target directory of the binary under test.
fn target_dir() -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_tickstream"));
    binary
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/tickstream")
        .to_path_buf()
}

/// `packaging/tickstream.service`, as the package installs it.
fn unit() -> String {
    fs::read_to_string(Path::new(REPO).join("packaging/tickstream.service")).expect("the unit")
}

/// True if `tool` runs (with `arg`, say `--version`).
fn runs(tool: &str, arg: &str) -> bool {
    Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The tools of `tools` (each with an argument it answers) that do not run.
fn missing<'a>(tools: &[(&'a str, &str)]) -> Vec<&'a str> {
    let absent = tools.iter().filter(|(tool, arg)| !runs(tool, arg));
    absent.map(|(tool, _)| *tool).collect()
}

/// Runs `command`; panics with its output unless it succeeds.
fn run_ok(command: &mut Command) -> String {
    let out = output(command);
    assert!(
        out.status.success(),
        "{command:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn output(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"))
}

/// `program`, run as root: directly when the tests run as root, else
/// through `sudo -n` (see [`package_tools`]).
fn root(program: &str) -> Command {
    if is_root() {
        Command::new(program)
    } else {
        let mut command = Command::new("sudo");
        command.args(["-n", program]);
        command
    }
}

fn is_root() -> bool {
    run_ok(Command::new("id").arg("-u")).trim() == "0"
}

/// A directory of the test's own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("tickstream-package-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temporary directory");
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The fully static binary the package ships, built by the packaging
/// script (`--binary`) with the same flags, under the suite's target
/// directory.
fn static_binary() -> PathBuf {
    let out = run_ok(
        Command::new(Path::new(REPO).join("packaging/build-deb.sh"))
            .arg("--binary")
            .env("CARGO_TARGET_DIR", target_dir()),
    );
    PathBuf::from(out.lines().last().expect("the binary's path"))
}

/// A token for `--auth-keys keys`, signed with its first key.
fn token(keys: &Path, flags: &[&str]) -> String {
    let out = run_ok(
        Command::new(env!("CARGO_BIN_EXE_tickstream"))
            .arg("token")
            .arg("--auth-keys")
            .arg(keys)
            .args(flags),
    );
    out.trim().to_string()
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

// ---------------------------------------------------------------------------
// The package

/// The paths under the system's directories whose name holds `tickstream`,
/// but for this repository and its target directory (which may be under
/// them).
fn system_paths() -> BTreeSet<PathBuf> {
    let skip = [PathBuf::from(REPO), target_dir(), std::env::temp_dir()];
    let mut found = BTreeSet::new();
    let mut todo: Vec<PathBuf> = ["/etc", "/usr", "/var", "/opt", "/srv", "/run"]
        .iter()
        .map(PathBuf::from)
        .collect();
    while let Some(dir) = todo.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if skip.iter().any(|s| path.starts_with(s)) {
                continue;
            }
            if entry.file_name().to_string_lossy().contains("tickstream") {
                found.insert(path.clone());
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(path);
            }
        }
    }
    found
}

/// `dpkg-query`'s status of the package: `installed`, `config-files`, or
/// `not-installed` (also when dpkg has never heard of it).
fn package_status() -> String {
    let out =
        output(Command::new("dpkg-query").args(["-W", "-f", "${db:Status-Status}", "tickstream"]));
    match String::from_utf8_lossy(&out.stdout).trim() {
        "" => "not-installed".to_string(),
        status => status.to_string(),
    }
}

/// Purges the package when dropped, so a failed test leaves nothing
/// installed.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        if package_status() != "not-installed" {
            let _ = output(root("dpkg").args(["--purge", "tickstream"]));
        }
        let _ = output(root("rm").args(["-f", "/etc/tickstream/keys"]));
    }
}

/// The processes running the installed binary (by their command line,
/// which any user may read).
fn installed_processes() -> Vec<String> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmdline) = fs::read(entry.path().join("cmdline")) {
            if cmdline.split(|b| *b == 0).next() == Some(b"/usr/bin/tickstream") {
                pids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    pids
}

/// True if `path` exists, asked as root (`/etc/tickstream` is not for
/// everyone to look into).
fn exists_for_root(path: &str) -> bool {
    output(root("test").args(["-e", path])).status.success()
}

fn user_exists(name: &str) -> bool {
    runs_with("getent", &["passwd", name])
}

fn group_exists(name: &str) -> bool {
    runs_with("getent", &["group", name])
}

fn runs_with(tool: &str, args: &[&str]) -> bool {
    output(Command::new(tool).args(args)).status.success()
}

/// True if every tool of the package test is there and it may install
/// packages; otherwise SKIPPED (or a failure under CI).
fn package_tools() -> bool {
    let missing = missing(&[
        ("dpkg-deb", "--version"),
        ("lintian", "--version"),
        ("systemd-analyze", "--version"),
        ("setpriv", "--version"),
        ("unshare", "--version"),
    ]);
    if !missing.is_empty() {
        skip_or_fail(&format!(
            "{} (apt-get install lintian systemd util-linux); the package test did not run",
            missing.join(", ")
        ));
        return false;
    }
    if !is_root() && !runs_with("sudo", &["-n", "true"]) {
        skip_or_fail("root or sudo -n, for dpkg -i in a namespace (the package test did not run)");
        return false;
    }
    let namespace = root("unshare").args(["--mount", "--", "true"]).output();
    if !namespace.is_ok_and(|out| out.status.success()) {
        skip_or_fail(
            "a mount namespace (unshare --mount), for the package test's copy of the system",
        );
        return false;
    }
    true
}

/// The overall exposure `systemd-analyze security --offline=true` gives
/// `unit`: `→ Overall exposure level for tickstream.service: 1.1 OK 🙂`.
fn exposure(unit: &Path) -> f64 {
    let out = run_ok(
        Command::new("systemd-analyze")
            .args(["security", "--offline=true"])
            .arg(unit),
    );
    let line = out
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall exposure in:\n{out}"));
    line.rsplit_once(": ")
        .and_then(|(_, score)| score.split_whitespace().next())
        .and_then(|score| score.parse().ok())
        .unwrap_or_else(|| panic!("no score in {line:?}"))
}

/// Mode, owner and group of `path`, e.g. `(0o640, "root", "tickstream")`.
fn mode_owner(path: &str) -> (u32, String, String) {
    let out = run_ok(root("stat").args(["-c", "%a %U %G", path]));
    let fields: Vec<&str> = out.split_whitespace().collect();
    let mode = u32::from_str_radix(fields[0], 8).unwrap_or_else(|_| panic!("{path}: {out}"));
    (mode, fields[1].to_string(), fields[2].to_string())
}

/// The package, built by `packaging/build-deb.sh` and checked by `lintian`:
/// no error, and each warning explained in the script.
fn build_and_lint() -> PathBuf {
    let script = Path::new(REPO).join("packaging/build-deb.sh");
    let built = run_ok(
        Command::new(&script)
            .env("CARGO_TARGET_DIR", target_dir())
            .env("LINTIAN", "no"),
    );
    let deb = PathBuf::from(built.lines().last().expect("the package's path"));
    assert!(deb.is_file(), "{deb:?}");
    let lint = output(Command::new("lintian").arg("--allow-root").arg(&deb));
    let lint_text =
        String::from_utf8_lossy(&lint.stdout).into_owned() + &String::from_utf8_lossy(&lint.stderr);
    println!("lintian:\n{lint_text}");
    let errors: Vec<&str> = lint_text.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian errors: {errors:#?}");
    let script_text = fs::read_to_string(&script).unwrap();
    for warning in lint_text.lines().filter(|l| l.starts_with("W:")) {
        let tag = warning.split_whitespace().nth(2).expect("W: package: tag");
        assert!(
            script_text.contains(&format!("W: {tag}")),
            "lintian warning {tag} is neither fixed nor explained in packaging/build-deb.sh"
        );
    }
    deb
}

/// Set, to the package's path, in the package test's throwaway system (see
/// [`in_a_throwaway_system`]), where the test runs a second time to install it.
const THROWAWAY_DEB: &str = "TICKSTREAM_PACKAGE_TEST_DEB";

/// The package test's name, for running it again in its throwaway system.
const PACKAGE_TEST: &str = "package::the_package_installs_verifies_and_purges_leaving_nothing";

/// Runs the package test again, as root, with the package at `deb`, in a
/// mount and PID namespace of its own where `/etc`, `/usr`, `/var`, `/opt`
/// and `/srv` are overlays on the machine's, their writes kept in memory
/// (tmpfs), and `/run` is empty, so no running systemd is seen. `dpkg`, the
/// user and the unit change that copy only, never the machine: a package
/// someone installed by the README stays as it was, running or not (the
/// test purges it in the copy first), and any process the package left
/// ends with the namespace.
fn in_a_throwaway_system(deb: &Path) {
    const SETUP: &str = r#"set -e
layers=$1 deb=$2; shift 2
# The copy's writes in memory: gone with the namespace, and never an overlay
# on an overlay (as /tmp is in a container).
mount -t tmpfs tickstream-test-layers "$layers"
# No running systemd in the copy: through the machine's /run, the maintainer
# scripts' systemctl would reach its PID 1 (and stop its tickstream).
mount -t tmpfs tickstream-test-run /run
for d in etc usr var opt srv; do
    [ -d "/$d" ] && [ ! -L "/$d" ] || continue
    mkdir -p "$layers/$d/upper" "$layers/$d/work"
    mount -t overlay "tickstream-test-$d" \
        -o "lowerdir=/$d,upperdir=$layers/$d/upper,workdir=$layers/$d/work" "/$d"
done
export TICKSTREAM_PACKAGE_TEST_DEB="$deb"
exec "$@""#;
    let layers = TempDir::new("layers");
    let out = output(
        root("unshare")
            .args(["--mount", "--propagation", "private"])
            .args([
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "--",
                "sh",
                "-c",
                SETUP,
                "sh",
            ])
            .arg(&layers.0)
            .arg(deb)
            .arg(std::env::current_exe().expect("the test binary"))
            .args([PACKAGE_TEST, "--exact", "--nocapture", "--test-threads=1"]),
    );
    // The mount point is root's once used, whoever runs the tests.
    let _ = output(root("rm").arg("-rf").arg(&layers.0));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    println!("the package test in its throwaway system:\n{text}");
    assert!(
        out.status.success() && text.contains("test result: ok. 1 passed"),
        "the package test in its throwaway system: {}\n{text}",
        out.status
    );
}

#[test]
fn the_package_installs_verifies_and_purges_leaving_nothing() {
    let Some(deb) = std::env::var_os(THROWAWAY_DEB) else {
        if package_tools() {
            in_a_throwaway_system(&build_and_lint());
        }
        return;
    };
    let deb = PathBuf::from(deb);
    // The maintainer scripts must not reach the machine's systemd.
    assert!(
        !Path::new("/run/systemd/system").exists(),
        "the copy sees a running systemd"
    );
    // The copy starts from the machine: a package installed there goes first.
    if package_status() != "not-installed" {
        println!("the machine has the package: purged in the copy first");
        run_ok(root("dpkg").args(["--purge", "tickstream"]));
    }

    let before = system_paths();
    let _purge = Purge;
    run_ok(root("dpkg").arg("--install").arg(&deb));
    assert_eq!(package_status(), "installed");

    // The files, as the package puts them.
    for (path, mode) in [
        ("/usr/bin/tickstream", 0o755),
        ("/usr/lib/systemd/system/tickstream.service", 0o644),
        ("/usr/lib/sysusers.d/tickstream.conf", 0o644),
        ("/etc/default/tickstream", 0o644),
        ("/usr/share/man/man1/tickstream.1.gz", 0o644),
        ("/usr/share/doc/tickstream/copyright", 0o644),
        ("/usr/share/doc/tickstream/changelog.Debian.gz", 0o644),
    ] {
        assert_eq!(
            mode_owner(path),
            (mode, "root".into(), "root".into()),
            "{path}"
        );
    }
    let version = run_ok(Command::new("/usr/bin/tickstream").arg("--version"));
    assert_eq!(
        version.trim(),
        format!("tickstream {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        fs::read_to_string("/usr/lib/systemd/system/tickstream.service").unwrap(),
        unit()
    );
    // The example settings: a conffile, every setting commented out.
    let conffiles =
        run_ok(Command::new("dpkg-query").args(["-W", "-f", "${Conffiles}", "tickstream"]));
    assert!(
        conffiles.contains("/etc/default/tickstream "),
        "{conffiles}"
    );
    let settings = fs::read_to_string("/etc/default/tickstream").unwrap();
    assert!(
        settings
            .lines()
            .all(|l| l.trim().is_empty() || l.starts_with('#')),
        "{settings}"
    );
    assert!(settings.contains("#TICKSTREAM_AUTH_KEYS=/etc/tickstream/keys"));
    // The man page, where the unit's Documentation= finds it.
    if runs("man", "--version") {
        let page = run_ok(Command::new("man").args(["-w", "tickstream"]));
        assert_eq!(page.trim(), "/usr/share/man/man1/tickstream.1.gz");
    }

    // The system user, from the sysusers.d entry.
    let user = run_ok(Command::new("getent").args(["passwd", "tickstream"]));
    let fields: Vec<&str> = user.trim().split(':').collect();
    let uid: u32 = fields[2].parse().unwrap();
    assert!(uid > 0 && uid < 1000, "a system user: {user}");
    assert_eq!(fields[6], "/usr/sbin/nologin", "{user}");
    assert!(group_exists("tickstream"));
    assert_eq!(
        mode_owner("/etc/tickstream"),
        (0o750, "root".into(), "tickstream".into())
    );
    // Enabled as debhelper enables, without a running systemd.
    if runs("deb-systemd-helper", "--help") || Path::new("/usr/bin/deb-systemd-helper").exists() {
        assert!(
            Path::new("/etc/systemd/system/multi-user.target.wants/tickstream.service")
                .symlink_metadata()
                .is_ok(),
            "enabled"
        );
    }

    // The key file as README puts it: the service's user reads it, another
    // user does not.
    run_ok(root("install").args([
        "-m",
        "0640",
        "-o",
        "root",
        "-g",
        "tickstream",
        "/dev/null",
        "/etc/tickstream/keys",
    ]));
    run_ok(root("sh").args([
        "-c",
        "echo package-test-secret-0123456789abcdefghijklmnop > /etc/tickstream/keys",
    ]));
    assert_eq!(
        mode_owner("/etc/tickstream/keys"),
        (0o640, "root".into(), "tickstream".into())
    );
    let as_user = |user: &str, group: &str| {
        output(
            root("setpriv")
                .args([
                    &format!("--reuid={user}"),
                    &format!("--regid={group}"),
                    "--clear-groups",
                    "/usr/bin/tickstream",
                    "token",
                    "--auth-keys",
                    "/etc/tickstream/keys",
                ])
                .env_remove("TICKSTREAM_AUTH_KEYS"),
        )
    };
    let service = as_user("tickstream", "tickstream");
    assert!(
        service.status.success(),
        "the service's user reads the keys: {}",
        String::from_utf8_lossy(&service.stderr)
    );
    let stranger = as_user("nobody", "nogroup");
    assert_eq!(
        stranger.status.code(),
        Some(2),
        "nobody must not read the keys"
    );

    // The unit, installed.
    let verify = output(Command::new("systemd-analyze").args([
        "verify",
        "--man=no",
        "/usr/lib/systemd/system/tickstream.service",
    ]));
    assert!(
        verify.status.success(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let score = exposure(Path::new("/usr/lib/systemd/system/tickstream.service"));
    println!("systemd-analyze security --offline=true: {score}");
    assert!(score <= 2.0, "exposure {score} above 2.0");

    // dpkg -r: no process, no user, no file outside /etc; the
    // configuration stays, its group root until a reinstall.
    run_ok(root("dpkg").args(["--remove", "tickstream"]));
    assert_eq!(package_status(), "config-files");
    assert_eq!(installed_processes(), Vec::<String>::new());
    let contents = run_ok(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    for line in contents.lines().filter(|l| l.starts_with('-')) {
        let path = line.rsplit(' ').next().unwrap().trim_start_matches('.');
        assert_eq!(
            Path::new(path).exists(),
            path.starts_with("/etc/"),
            "{path} after dpkg -r"
        );
    }
    // Left outside /etc: dpkg's own record of the remaining conffiles, and
    // deb-systemd-helper's of the enablement (debhelper keeps both until a
    // purge, so that a reinstall keeps the admin's choice).
    let kept = [
        "/etc/",
        "/var/lib/dpkg/info/tickstream.",
        "/var/lib/systemd/deb-systemd-helper-",
    ];
    let after_remove = system_paths();
    let left: Vec<&PathBuf> = after_remove
        .difference(&before)
        .filter(|p| !kept.iter().any(|k| p.to_string_lossy().starts_with(k)))
        .collect();
    assert!(left.is_empty(), "left behind by dpkg -r: {left:#?}");
    assert!(exists_for_root("/etc/tickstream/keys"));
    assert!(Path::new("/etc/default/tickstream").exists());
    assert!(!user_exists("tickstream"), "the user goes with dpkg -r");
    assert!(!group_exists("tickstream"), "the group goes with dpkg -r");
    let root_only = (0o640, "root".to_string(), "root".to_string());
    assert_eq!(mode_owner("/etc/tickstream/keys"), root_only);
    // A reinstall gives the kept key file back to the service.
    run_ok(root("dpkg").arg("--install").arg(&deb));
    assert_eq!(
        mode_owner("/etc/tickstream/keys"),
        (0o640, "root".into(), "tickstream".into())
    );
    assert!(as_user("tickstream", "tickstream").status.success());
    assert!(!exists_for_root("/etc/tickstream/.regroup"));
    run_ok(root("dpkg").args(["--remove", "tickstream"]));

    // dpkg -P: nothing at all.
    run_ok(root("dpkg").args(["--purge", "tickstream"]));
    assert_eq!(package_status(), "not-installed");
    let after_purge = system_paths();
    let left: Vec<&PathBuf> = after_purge.difference(&before).collect();
    assert!(left.is_empty(), "left behind by dpkg -P: {left:#?}");
    assert!(!user_exists("tickstream"), "the user is gone");
    assert!(!group_exists("tickstream"), "the group is gone");
}

// ---------------------------------------------------------------------------
// The sandbox, against strace

/// The system calls a unit's `SystemCallFilter=` lines allow, replayed in
/// order as systemd reads them (systemd.exec(5)): the first line decides
/// between an allow list (which then also holds `@default`) and a deny
/// list; later lines add to it or, with `~`, take from it; an empty value
/// resets it.
#[derive(Debug)]
struct SyscallFilter {
    allow_list: bool,
    names: BTreeSet<String>,
}

impl SyscallFilter {
    fn from_unit(unit: &str) -> SyscallFilter {
        let mut filter: Option<SyscallFilter> = None;
        for value in unit_values(unit, "SystemCallFilter") {
            if value.is_empty() {
                filter = None;
                continue;
            }
            let (invert, list) = match value.strip_prefix('~') {
                Some(rest) => (true, rest),
                None => (false, value.as_str()),
            };
            let current = filter.get_or_insert_with(|| {
                let mut names = BTreeSet::new();
                if !invert {
                    names.extend(expand("@default"));
                }
                SyscallFilter {
                    allow_list: !invert,
                    names,
                }
            });
            for item in list.split_whitespace() {
                // A name may carry `:errno`.
                let item = item.split(':').next().unwrap();
                let names = expand(item);
                if invert == current.allow_list {
                    for name in names {
                        current.names.remove(&name);
                    }
                } else {
                    current.names.extend(names);
                }
            }
        }
        filter.expect("a SystemCallFilter= in the unit")
    }

    fn allows(&self, syscall: &str) -> bool {
        self.names.contains(syscall) == self.allow_list
    }
}

/// A group (`@name`), expanded by `systemd-analyze syscall-filter` with its
/// nested groups; or a single call.
fn expand(item: &str) -> BTreeSet<String> {
    if !item.starts_with('@') {
        return BTreeSet::from([item.to_string()]);
    }
    let out = run_ok(Command::new("systemd-analyze").args(["syscall-filter", item]));
    let mut names = BTreeSet::new();
    for line in out.lines().skip(1) {
        let name = line.trim();
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        if name.starts_with('@') {
            names.extend(expand(name));
        } else {
            names.insert(name.to_string());
        }
    }
    assert!(!names.is_empty(), "systemd-analyze knows no {item}");
    names
}

/// The values of `Key=` in the unit, in order, with `#` comment lines
/// left out.
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}=");
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix(&prefix))
        .map(|v| v.trim().to_string())
        .collect()
}

/// True if the unit sets `key` to `value`.
fn unit_sets(unit: &str, key: &str, value: &str) -> bool {
    unit_values(unit, key).last().is_some_and(|v| v == value)
}

/// What one `strace -f -o FILE` run recorded.
#[derive(Default)]
struct Trace {
    /// Each system call made, with how many times.
    syscalls: BTreeMap<String, usize>,
    /// The first argument of each `socket` and `socketpair`.
    families: BTreeSet<String>,
    /// Every line (pid, call, arguments, result), for the other checks.
    calls: Vec<(u32, String, String)>,
    /// Lines that are none of the above, such as a 32-bit mode notice.
    other: Vec<String>,
}

impl Trace {
    fn read(&mut self, path: &Path) {
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        for line in text.lines() {
            let Some((pid, rest)) = line.split_once(' ') else {
                continue;
            };
            let Ok(pid) = pid.parse::<u32>() else {
                self.other.push(line.to_string());
                continue;
            };
            let rest = rest.trim_start();
            // `<... futex resumed>`: counted where it was `<unfinished ...>`;
            // `--- SIGHUP ... ---`, `+++ exited ... +++`: no call.
            if rest.starts_with("<...") || rest.starts_with("---") || rest.starts_with("+++") {
                continue;
            }
            let Some((name, args)) = rest.split_once('(') else {
                self.other.push(line.to_string());
                continue;
            };
            if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                self.other.push(line.to_string());
                continue;
            }
            *self.syscalls.entry(name.to_string()).or_default() += 1;
            if name == "socket" || name == "socketpair" {
                let family = args.split([',', ')']).next().unwrap_or_default();
                self.families.insert(family.trim().to_string());
            }
            self.calls.push((pid, name.to_string(), args.to_string()));
        }
    }

    /// The calls that the unit's other settings would refuse or make
    /// fail, each with why.
    fn sandbox_violations(&self, unit: &str) -> Vec<String> {
        let pids: BTreeSet<u32> = self.calls.iter().map(|(pid, _, _)| *pid).collect();
        let mut found = Vec::new();
        let yes = |key: &str| unit_sets(unit, key, "yes");
        for (_, name, args) in &self.calls {
            let call = || format!("{name}({args}");
            // A data call's string is data, whatever it starts with.
            let data = [
                "read", "write", "pread64", "pwrite64", "readv", "writev", "recvfrom", "recvmsg",
                "sendmsg",
            ];
            let path = if data.contains(&name.as_str()) {
                None
            } else {
                first_path(args)
            };
            if yes("MemoryDenyWriteExecute")
                && matches!(name.as_str(), "mmap" | "mprotect" | "pkey_mprotect")
                && args.contains("PROT_EXEC")
                && (name != "mmap" || args.contains("PROT_WRITE") || args.contains("MAP_ANON"))
            {
                found.push(format!("MemoryDenyWriteExecute=: {}", call()));
            }
            if yes("RestrictNamespaces")
                && (matches!(name.as_str(), "unshare" | "setns")
                    || (name.starts_with("clone") && args.contains("CLONE_NEW")))
            {
                found.push(format!("RestrictNamespaces=: {}", call()));
            }
            if yes("LockPersonality") && name == "personality" && !args.starts_with("0xffffffff") {
                found.push(format!("LockPersonality=: {}", call()));
            }
            if yes("RestrictSUIDSGID")
                && name.contains("chmod")
                && (args.contains("S_ISUID") || args.contains("S_ISGID"))
            {
                found.push(format!("RestrictSUIDSGID=: {}", call()));
            }
            // ProtectSystem=strict (and ProtectKernelTunables=): nothing
            // is written outside /dev, /proc and the private /tmp; the
            // server writes no file at all.
            let writes = matches!(name.as_str(), "open" | "openat" | "openat2" | "creat")
                && ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"]
                    .iter()
                    .any(|f| args.contains(f));
            let changes = [
                "mkdir", "rmdir", "unlink", "rename", "link", "symlink", "truncate", "chmod",
                "chown", "mknod", "utime", "setxattr",
            ]
            .iter()
            .any(|c| name.starts_with(c) || name.starts_with(&format!("f{c}")));
            if unit_sets(unit, "ProtectSystem", "strict")
                && (writes || changes)
                && path.as_deref() != Some("/dev/null")
            {
                found.push(format!("ProtectSystem=strict: {}", call()));
            }
            let Some(path) = path else { continue };
            if yes("PrivateDevices") {
                let private = [
                    "null", "zero", "full", "random", "urandom", "tty", "pts", "shm",
                ];
                if let Some(device) = path.strip_prefix("/dev/") {
                    let device = device.split('/').next().unwrap();
                    if !private.contains(&device) {
                        found.push(format!("PrivateDevices=: {}", call()));
                    }
                }
            }
            if yes("ProtectHome")
                && ["/home", "/root", "/run/user"]
                    .iter()
                    .any(|home| path == *home || path.starts_with(&format!("{home}/")))
            {
                found.push(format!("ProtectHome=: {}", call()));
            }
            if unit_sets(unit, "ProtectProc", "invisible") {
                let pid = path
                    .strip_prefix("/proc/")
                    .map(|p| p.split('/').next().unwrap());
                if let Some(Ok(pid)) = pid.map(str::parse::<u32>) {
                    if !pids.contains(&pid) {
                        found.push(format!("ProtectProc=invisible: {}", call()));
                    }
                }
            }
            if unit_sets(unit, "ProcSubset", "pid")
                && path.starts_with("/proc/")
                && !path.starts_with("/proc/self")
                && !path.starts_with("/proc/thread-self")
                && !path["/proc/".len()..].starts_with(|c: char| c.is_ascii_digit())
            {
                found.push(format!("ProcSubset=pid: {}", call()));
            }
        }
        found
    }
}

/// The first quoted argument that is an absolute path (a file name), or
/// the `sun_path` of a Unix socket address.
fn first_path(args: &str) -> Option<String> {
    let start = args.find("\"/")? + 1;
    let len = args[start..].find('"')?;
    Some(args[start..start + len].to_string())
}

/// The server under `strace -f -qq -o trace`, with `NOTIFY_SOCKET` as
/// systemd sets it, `--addr 127.0.0.1:0` and `args`.
fn start_traced(binary: &Path, trace: &Path, notify: &Path, args: &[&str]) -> Server {
    let mut command = Command::new("strace");
    command
        .args(["-f", "-qq", "-s", "256", "-o"])
        .arg(trace)
        .arg(binary)
        .env("NOTIFY_SOCKET", notify);
    Server::start_command(command, args)
}

/// The PID of the server that strace (`server`'s child process) runs:
/// strace's child. Signals go to it (strace blocks them).
fn tracee(server: &Server) -> u32 {
    let children = format!("/proc/{0}/task/{0}/children", server.pid());
    let mut pid = None;
    assert!(
        wait_until(IO_TIMEOUT, || {
            pid = fs::read_to_string(&children)
                .ok()
                .and_then(|c| c.split_whitespace().next()?.parse().ok());
            pid.is_some()
        }),
        "strace's child"
    );
    pid.unwrap()
}

fn kill(pid: u32, signal: &str) {
    let sent = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(sent.success(), "kill -s {signal} {pid}");
}

/// Waits for `/metrics`' `sample` to reach `at_least`.
fn wait_metric(server: &Server, token: &str, sample: &str, at_least: u64) {
    let auth = bearer(token);
    assert!(
        wait_until(Duration::from_secs(20), || server
            .metric_with(sample, &auth)
            >= at_least),
        "{sample} never reached {at_least}; log:\n{}",
        server.log()
    );
}

/// SIGTERM with streams open: the drain ends them, the server exits 0.
fn stop_with_drain(mut server: Server, pid: u32, streams: &[Sse]) {
    assert!(!streams.is_empty());
    kill(pid, "TERM");
    let status = server.exit_within(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit after SIGTERM: {status:?}; log:\n{}",
        server.log()
    );
    assert!(
        server.wait_for_log("stopped after draining", IO_TIMEOUT),
        "{}",
        server.log()
    );
}

/// The sim feed, as the unit runs it by default, with access control:
/// every kind of request and stream, expiry, the SIGHUP reloads (a good
/// file that revokes a key, a bad one), a client that never reads
/// (write timeout), and SIGTERM with a drain.
fn trace_sim_server(binary: &Path, dir: &TempDir, notify: &Path) -> PathBuf {
    let trace = dir.join("sim.strace");
    let secret_a = "package-test-secret-A-0123456789abcdefghijklmnop";
    let secret_b = "package-test-secret-B-0123456789abcdefghijklmnop";
    let (keys, keys_a, keys_b) = (dir.join("keys"), dir.join("keys-a"), dir.join("keys-b"));
    fs::write(&keys, format!("# two keys\n{secret_a}\n{secret_b}\n")).unwrap();
    fs::write(&keys_a, format!("{secret_a}\n")).unwrap();
    fs::write(&keys_b, format!("{secret_b}\n")).unwrap();
    let token_a = token(&keys_a, &[]);
    let token_b = token(&keys_b, &["--scope", "metrics"]);
    let token_brief = token(&keys_b, &["--ttl", "1s", "--sub", "brief"]);
    let symbols = many_symbols();
    let keys_arg = keys.to_str().unwrap();
    let server = start_traced(
        binary,
        &trace,
        notify,
        &[
            "--auth-keys",
            keys_arg,
            "--interval",
            "20ms",
            "--symbols",
            &symbols,
            "--history",
            "20000",
            "--client-queue",
            "100000",
            "--write-timeout",
            "1s",
            "--heartbeat",
            "200ms",
            "--drain",
            "1s",
        ],
    );
    let pid = tracee(&server);
    let (auth_a, auth_b) = (bearer(&token_a), bearer(&token_b));

    // Complete answers, good and bad.
    assert_eq!(get(server.addr, "/").status, 200);
    assert_eq!(get(server.addr, "/healthz").status, 200);
    assert_eq!(get(server.addr, "/prices").status, 401);
    assert_eq!(get(server.addr, "/nowhere").status, 404);
    let metrics = format!("GET /metrics HTTP/1.1\r\nHost: t\r\n{auth_b}\r\n");
    assert_eq!(request(server.addr, metrics.as_bytes()).status, 200);
    let head = format!("HEAD /prices HTTP/1.1\r\nHost: t\r\n{auth_a}\r\n");
    assert_eq!(request(server.addr, head.as_bytes()).status, 200);
    assert_eq!(
        request(server.addr, b"OPTIONS /prices HTTP/1.1\r\nHost: t\r\n\r\n").status,
        204
    );
    assert_eq!(request(server.addr, b"NONSENSE\r\n\r\n").status, 400);

    // Streams of every kind.
    let mut plain = Sse::connect(server.addr, "/prices", &auth_a);
    plain.events(3, IO_TIMEOUT);
    let mut some = Sse::connect(server.addr, "/prices?symbols=BTC,symbol001", &auth_a);
    some.events(2, IO_TIMEOUT);
    let mut conflated = Sse::connect(server.addr, "/prices?throttle=100ms", &auth_a);
    conflated.events(2, IO_TIMEOUT);
    let mut article = Sse::connect(server.addr, "/crypto-price?symbol=BTC", &auth_a);
    let frame = article.next_frame(IO_TIMEOUT);
    assert!(frame.is_some(), "an article frame");
    let mut brief = Sse::connect(server.addr, "/prices?symbols=BTC", &bearer(&token_brief));
    brief
        .next_event(IO_TIMEOUT)
        .expect("an event before expiry");

    // A client that never reads, asking for the whole history: its socket
    // fills at once and the write times out.
    let _unread = stream_request(server.addr, &format!("{auth_b}Last-Event-ID: 0\r\n"));
    wait_metric(
        &server,
        &token_b,
        "tickstream_disconnects_total{reason=\"write_timeout\"}",
        1,
    );
    wait_metric(
        &server,
        &token_b,
        "tickstream_disconnects_total{reason=\"expired\"}",
        1,
    );

    // SIGHUP: key A removed (its streams end, revoked), then a bad file.
    fs::write(&keys, format!("{secret_b}\n")).unwrap();
    kill(pid, "HUP");
    wait_metric(
        &server,
        &token_b,
        "tickstream_disconnects_total{reason=\"revoked\"}",
        1,
    );
    fs::write(&keys, "too-short\n").unwrap();
    kill(pid, "HUP");
    assert!(
        server.wait_for_log("keeping the 1 key", IO_TIMEOUT),
        "{}",
        server.log()
    );

    // SIGTERM with three streams open.
    let streams: Vec<Sse> = (0..3)
        .map(|_| Sse::connect(server.addr, "/prices", &auth_b))
        .collect();
    stop_with_drain(server, pid, &streams);
    trace
}

/// A replica on a real Redis, named by host (so glibc's resolver runs):
/// history, live entries, Redis gone and back (back-off, reconnect,
/// catch-up), and SIGTERM with a drain.
fn trace_redis_replica(binary: &Path, dir: &TempDir, notify: &Path) -> PathBuf {
    let trace = dir.join("redis.strace");
    let mut redis = Redis::start();
    redis.add("*", "BTC", "100.5");
    let url = format!("redis://localhost:{}", redis.port);
    let server = start_traced(
        binary,
        &trace,
        notify,
        &[
            "--feed",
            "redis",
            "--redis",
            &url,
            "--heartbeat",
            "200ms",
            "--drain",
            "1s",
        ],
    );
    let pid = tracee(&server);
    let healthz = |status: u16| {
        wait_until(Duration::from_secs(20), || {
            get(server.addr, "/healthz").status == status
        })
    };
    assert!(healthz(200), "replica up: {}", server.log());
    let mut sse = Sse::connect(server.addr, "/prices", "");
    sse.next_event(IO_TIMEOUT).expect("the snapshot");
    redis.add("*", "ETH", "2000.25");
    sse.next_event(IO_TIMEOUT).expect("a live entry");
    redis.stop();
    assert!(healthz(503), "replica notices: {}", server.log());
    redis.restart();
    assert!(healthz(200), "replica back: {}", server.log());
    redis.add("*", "SOL", "150");
    sse.next_event(IO_TIMEOUT)
        .expect("an entry after the reconnect");
    stop_with_drain(server, pid, &[sse]);
    trace
}

#[test]
fn every_syscall_and_socket_family_of_the_server_is_allowed_by_the_unit() {
    let missing = missing(&[("strace", "-V"), ("systemd-analyze", "--version")]);
    if !missing.is_empty() {
        skip_or_fail(&format!(
            "{} (apt-get install strace systemd); the sandbox test did not run",
            missing.join(", ")
        ));
        return;
    }
    if !redis_available() {
        return;
    }
    let unit = unit();
    let filter = SyscallFilter::from_unit(&unit);
    let families: BTreeSet<String> = unit_values(&unit, "RestrictAddressFamilies")
        .last()
        .expect("RestrictAddressFamilies= in the unit")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert!(
        !families.iter().any(|f| f.starts_with('~')),
        "an allow list of families"
    );

    let binary = static_binary();
    let dir = TempDir::new("strace");
    let notify_path = dir.join("notify");
    let notify = UnixDatagram::bind(&notify_path).expect("notify socket");
    let traces = [
        trace_sim_server(&binary, &dir, &notify_path),
        trace_redis_replica(&binary, &dir, &notify_path),
    ];
    let mut told = Vec::new();
    notify.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 256];
    while let Ok(n) = notify.recv(&mut buf) {
        told.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(told.iter().any(|m| m == "READY=1"), "{told:?}");
    assert!(told.iter().any(|m| m == "STOPPING=1"), "{told:?}");

    let mut trace = Trace::default();
    for path in &traces {
        trace.read(path);
    }
    let listed: Vec<String> = trace
        .syscalls
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    println!(
        "{} system calls made: {}",
        trace.syscalls.len(),
        listed.join(", ")
    );
    println!("socket families: {:?}", trace.families);
    assert!(
        trace.syscalls.contains_key("execve") && trace.syscalls.contains_key("sendto"),
        "the trace holds the re-exec and the notify datagrams: {listed:?}"
    );
    assert!(
        trace.other.is_empty(),
        "strace lines not understood (another architecture?): {:#?}",
        trace.other
    );
    let denied: Vec<&String> = trace
        .syscalls
        .keys()
        .filter(|name| !filter.allows(name))
        .collect();
    assert!(
        denied.is_empty(),
        "the unit's SystemCallFilter= denies {denied:?}, which the server calls"
    );
    let foreign: Vec<&String> = trace.families.difference(&families).collect();
    assert!(
        foreign.is_empty(),
        "the unit's RestrictAddressFamilies= ({families:?}) refuses {foreign:?}"
    );
    let violations = trace.sandbox_violations(&unit);
    assert!(
        violations.is_empty(),
        "calls the unit's sandbox refuses: {violations:#?}"
    );
}

// ---------------------------------------------------------------------------
// Readiness: sd_notify

/// The next datagram on `socket`, as text; panics after [`IO_TIMEOUT`].
fn told(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("a notify datagram");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Asserts nothing more was sent.
fn nothing_more(socket: &UnixDatagram) {
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 256];
    match socket.recv(&mut buf) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!(
            "unexpected datagram: {:?}",
            other.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
        ),
    }
    socket.set_nonblocking(false).unwrap();
}

/// `RELOADING=1\nMONOTONIC_USEC=N`: N, checked against the boot clock
/// (`CLOCK_MONOTONIC` never runs ahead of `/proc/uptime`'s
/// `CLOCK_BOOTTIME`).
fn reloading(message: &str) -> u64 {
    let usec = message
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .unwrap_or_else(|| panic!("not a RELOADING=1 message: {message:?}"));
    let usec: u64 = usec
        .parse()
        .unwrap_or_else(|_| panic!("MONOTONIC_USEC: {message:?}"));
    let uptime = fs::read_to_string("/proc/uptime").unwrap();
    let uptime: f64 = uptime.split_whitespace().next().unwrap().parse().unwrap();
    assert!(
        usec > 0 && usec as f64 <= (uptime + 1.0) * 1e6,
        "MONOTONIC_USEC={usec}, uptime {uptime} s"
    );
    usec
}

fn notify_command(socket: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tickstream"));
    command.env("NOTIFY_SOCKET", socket);
    command
}

#[test]
fn the_server_tells_systemd_ready_reloading_and_stopping() {
    let dir = TempDir::new("notify");
    let path = dir.join("notify");
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    socket.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let keys = dir.join("keys");
    fs::write(&keys, "notify-test-secret-0123456789abcdefghijklmnop\n").unwrap();

    let mut server = Server::start_command(
        notify_command(path.to_str().unwrap()),
        &["--auth-keys", keys.to_str().unwrap(), "--drain", "1s"],
    );
    // The listening line came first; READY=1 is the first datagram, and
    // the server answers by then.
    assert_eq!(told(&socket), "READY=1");
    assert_eq!(get(server.addr, "/healthz").status, 200);
    nothing_more(&socket);

    // A reload: RELOADING=1 with the monotonic time, then READY=1 once the
    // keys are read again.
    server.signal("HUP");
    let first = reloading(&told(&socket));
    assert_eq!(told(&socket), "READY=1");
    assert!(
        server.wait_for_log("keys reloaded: 1 key", IO_TIMEOUT),
        "{}",
        server.log()
    );
    // A bad key file is a reload too: the old keys stay, and it says READY.
    fs::write(&keys, "short\n").unwrap();
    server.signal("HUP");
    let second = reloading(&told(&socket));
    assert!(second > first, "MONOTONIC_USEC {second} after {first}");
    assert_eq!(told(&socket), "READY=1");
    assert!(
        server.wait_for_log("keeping the 1 key", IO_TIMEOUT),
        "{}",
        server.log()
    );
    nothing_more(&socket);

    // SIGTERM: STOPPING=1 as the drain starts, then a clean exit.
    server.signal("TERM");
    assert_eq!(told(&socket), "STOPPING=1");
    let status = server.exit_within(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    nothing_more(&socket);
}

#[test]
fn without_a_usable_notify_socket_the_server_runs_and_stops_as_ever() {
    // No variable at all (not even one inherited from the test's own
    // service manager); then one naming no socket.
    let mut bare = Command::new(env!("CARGO_BIN_EXE_tickstream"));
    bare.env_remove("NOTIFY_SOCKET");
    let dir = TempDir::new("no-notify");
    let nowhere = dir.join("nobody-listens");
    for command in [bare, notify_command(nowhere.to_str().unwrap())] {
        let mut server = Server::start_command(command, &["--drain", "0"]);
        assert_eq!(get(server.addr, "/healthz").status, 200);
        server.signal("HUP");
        assert!(
            server.wait_for_log("SIGHUP ignored", IO_TIMEOUT),
            "{}",
            server.log()
        );
        assert_eq!(get(server.addr, "/healthz").status, 200);
        server.signal("TERM");
        let status = server.exit_within(Duration::from_secs(10));
        assert!(
            status.is_some_and(|s| s.success()),
            "{status:?}: {}",
            server.log()
        );
    }

    // An abstract socket (`@name`) is a socket too.
    let name = format!("tickstream-notify-test-{}", std::process::id());
    let address = UnixAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = UnixDatagram::bind_addr(&address).expect("an abstract socket");
    socket.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut server = Server::start_command(notify_command(&format!("@{name}")), &["--drain", "0"]);
    assert_eq!(told(&socket), "READY=1");
    server.signal("TERM");
    assert_eq!(told(&socket), "STOPPING=1");
    assert!(server
        .exit_within(Duration::from_secs(10))
        .is_some_and(|s| s.success()));
}
