//! The binary as a user meets it: real processes, real exit codes.

use std::process::Command;

fn weir(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .output()
        .expect("the weir binary runs")
}

#[test]
fn planned_subcommands_exit_2_and_say_so() {
    for cmd in [
        "server", "agent", "ratemon", "probe", "perfd", "relay", "query", "token", "up",
    ] {
        let out = weir(&[cmd]);
        assert_eq!(out.status.code(), Some(2), "weir {cmd}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim(), format!("weir {cmd}: not implemented yet"));
        assert!(out.stdout.is_empty(), "weir {cmd} printed to stdout");
    }
}

#[test]
fn planned_subcommands_accept_their_future_flags() {
    let out = weir(&["server", "--listen", "127.0.0.1:0", "--no-auth"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "weir server: not implemented yet"
    );
}

#[test]
fn help_lists_every_subcommand() {
    let out = weir(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "server", "agent", "ratemon", "probe", "perfd", "relay", "query", "token", "up",
    ] {
        assert!(help.contains(cmd), "--help does not mention {cmd}:\n{help}");
    }
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let out = weir(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
}
