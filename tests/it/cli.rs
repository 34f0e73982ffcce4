//! The command line: help, version, and one-line usage errors with exit 2.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;

use crate::support::*;

/// Runs `tickstream` with these flags and environment (and no other
/// `TICKSTREAM_` setting); returns its exit code, stdout and stderr. Every
/// case here must exit on its own: one that starts serving instead is
/// killed after [`IO_TIMEOUT`] and fails.
fn tickstream(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = without_tickstream_env(Command::new(env!("CARGO_BIN_EXE_tickstream")));
    command
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = ChildGuard::new(command.spawn().expect("run tickstream"));
    let read = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).expect("UTF-8 output");
            text
        })
    };
    let out = read(Box::new(child.stdout.take().unwrap()));
    let err = read(Box::new(child.stderr.take().unwrap()));
    let status = child
        .exit_within(IO_TIMEOUT)
        .unwrap_or_else(|| panic!("tickstream {args:?} still running after {IO_TIMEOUT:?}"));
    (
        status.code().unwrap_or(-1),
        out.join().unwrap(),
        err.join().unwrap(),
    )
}

#[test]
fn help_and_version() {
    let (code, out, _) = tickstream(&["--help"], &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains("--max-clients N") && out.contains("TICKSTREAM_"),
        "{out}"
    );
    let (code, out, _) = tickstream(&["--version"], &[]);
    assert_eq!(
        (code, out.as_str()),
        (0, concat!("tickstream ", env!("CARGO_PKG_VERSION"), "\n"))
    );
}

#[test]
fn bad_flags_exit_2_with_one_line() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&["--bogus"], &[], "tickstream: --bogus: unknown flag (see --help)\n"),
        (&["--interval", "fast"], &[], "tickstream: --interval: expected a duration such as 250ms, 1s or 2m, got \"fast\" (see --help)\n"),
        (&["--heartbeat=0s"], &[], "tickstream: --heartbeat: must be greater than zero, got \"0s\" (see --help)\n"),
        (&["--seed"], &[], "tickstream: --seed: needs a value (see --help)\n"),
        (&[], &[("TICKSTREAM_CLIENT_QUEUE", "lots")], "tickstream: TICKSTREAM_CLIENT_QUEUE: expected a whole number from 1 to 1000000, got \"lots\" (see --help)\n"),
        (&[], &[("PORT", "99999")], "tickstream: PORT: expected a port number, got \"99999\" (see --help)\n"),
        (&["--cors-origin", "a b"], &[], "tickstream: --cors-origin: expected an origin such as * or https://example.com, or none, got \"a b\" (see --help)\n"),
    ];
    for (args, env, message) in cases {
        let (code, out, err) = tickstream(args, env);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (2, "", *message),
            "{args:?} {env:?}"
        );
    }
}

#[test]
fn an_address_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, err) = tickstream(&["--addr", &addr], &[]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!("tickstream: cannot bind {addr}: ")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
