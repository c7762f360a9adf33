//! The remote cache (section 7) against the real `turborepo-remote-cache`
//! server, installed with npm on first use (pinned) into the target
//! directory, and started per test on a free port with a storage
//! directory of its own. Faults are played with sockets the tests hold
//! themselves: a port that accepts and never answers, a server that
//! stalls in the middle of an artifact.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::common::Test;

const SERVER: &str = "turborepo-remote-cache";
const VERSION: &str = "2.12.0";
pub(crate) const TOKEN: &str = "test-token";
pub(crate) const TEAM: &str = "tasker-tests";

/// Where the pinned server is installed: once per machine, by the first
/// test that needs it (in a directory of its own, renamed into place, so
/// that two test processes never see half an install).
fn installed() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{SERVER}-{VERSION}"));
        if entry_point(&dir).exists() {
            return dir;
        }
        let partial = dir.with_extension(format!("partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial).expect("mkdir for npm");
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .arg("--prefix")
            .arg(&partial)
            .arg(format!("{SERVER}@{VERSION}"))
            .stdin(Stdio::null())
            .status()
            .expect("npm (node 20) installs the test server");
        assert!(status.success(), "npm install {SERVER}@{VERSION} failed");
        if std::fs::rename(&partial, &dir).is_err() {
            // Another test process finished first.
            let _ = std::fs::remove_dir_all(&partial);
        }
        assert!(entry_point(&dir).exists(), "{SERVER} has no dist/cli.js");
        dir
    })
}

fn entry_point(dir: &Path) -> PathBuf {
    dir.join("node_modules")
        .join(SERVER)
        .join("dist")
        .join("cli.js")
}

/// A running server, stopped when dropped.
pub(crate) struct Server {
    child: Option<Child>,
    port: u16,
    storage: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Server {
    pub(crate) fn start() -> Server {
        Server::start_with(&[])
    }

    fn start_with(env: &[(&str, &str)]) -> Server {
        let storage = tempfile::tempdir().expect("storage dir");
        let port = free_port();
        let mut cmd = Command::new("node");
        cmd.arg(entry_point(installed()))
            .env("NODE_ENV", "production")
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("TURBO_TOKEN", TOKEN)
            .env("STORAGE_PROVIDER", "local")
            .env("STORAGE_PATH", storage.path())
            .env("STORAGE_PATH_USE_TMP_FOLDER", "false")
            .env("LOG_LEVEL", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("node starts the server");
        let server = Server {
            child: Some(child),
            port,
            storage,
        };
        let end = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < end, "the server never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The artifacts the server holds (not their tags).
    fn artifacts(&self) -> Vec<PathBuf> {
        let dir = self.storage.path().join(TEAM);
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_none())
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A project whose `build` is worth caching: outputs in a directory and a
/// glob, output on both streams, an extracted value read by `show`, and a
/// marker outside the checkout that proves whether it ran.
const PROJECT: &str = r#"
    [tasks.build]
    sources = ["src/**"]
    outputs = ["dist", "*.o"]
    extract = { version = 'version (\d+\.\d+)' }
    run = """
    echo "building version 1.2"
    echo "a warning" >&2
    mkdir -p dist/sub
    cp src/main.c dist/app
    chmod 750 dist/app
    echo deep > dist/sub/deep.txt
    echo object > main.o
    echo ran >> "$MARKER"
    """

    [tasks.show]
    deps = ["build"]
    run = "echo built {{ tasks.build.version }}"
"#;

/// What `build` of `PROJECT` shows when it runs: its stdout, and its
/// stderr (the echo of its commands and its warning).
const BUILT: &str = "building version 1.2\n";
const BUILD_ECHO: &str = r#"[build] $ echo "building version 1.2"
[build]   echo "a warning" >&2
[build]   mkdir -p dist/sub
[build]   cp src/main.c dist/app
[build]   chmod 750 dist/app
[build]   echo deep > dist/sub/deep.txt
[build]   echo object > main.o
[build]   echo ran >> "$MARKER"
a warning
"#;

/// A checkout of `PROJECT` using `server`; its runs append to `marker`.
fn checkout(server_url: &str, marker: &Path) -> Test {
    Test::with(PROJECT)
        .file("src/main.c", "int main(void) { return 0; }\n")
        .env("TASKER_REMOTE_CACHE_URL", server_url)
        .env("TASKER_REMOTE_CACHE_TEAM", TEAM)
        .env("TASKER_REMOTE_CACHE_TOKEN", TOKEN)
        .env("MARKER", &marker.display().to_string())
}

/// How many times the marker says the build ran.
fn runs(marker: &Path) -> usize {
    std::fs::read_to_string(marker)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Every file under `dir` with its bytes, mode and mtime.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>, u32, std::time::SystemTime)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
            }
            let bytes = if meta.is_file() {
                std::fs::read(&path).unwrap()
            } else {
                Vec::new()
            };
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            out.push((
                rel,
                bytes,
                meta.permissions().mode(),
                meta.modified().unwrap(),
            ));
        }
    }
    out.sort();
    out
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

/// The cache's key is the run's fingerprint: a checkout whose task adds
/// `fail_on` (or changes its `extract` regex) is a miss, runs, and fails or
/// extracts as its own file says, never with the old artifact's verdict.
#[test]
fn a_changed_definition_is_a_different_artifact() {
    let server = Server::start();
    let marks = tempfile::tempdir().unwrap();
    let marker = marks.path().join("ran");
    checkout(&server.url(), &marker).run_with(&["show"]).expect(
        "building version 1.2\nbuilt 1.2\n",
        &format!("{BUILD_ECHO}[show] $ echo built 1.2\n"),
        0,
    );
    assert_eq!((runs(&marker), server.artifacts().len()), (1, 1));
    let strict = checkout(&server.url(), &marker).file(
        "tasks.toml",
        &PROJECT.replace("extract = {", "fail_on = ['a warning']\n    extract = {"),
    );
    let ran = strict.run_with(&["show"]);
    ran.code(1)
        .stdout(BUILT)
        .stderr_has("output matched fail_on");
    // It really ran (fail_on stops it, before or after its last line).
    assert!(
        !ran.stderr_text().contains("restored"),
        "{}",
        ran.stderr_text()
    );
    let before = runs(&marker);
    let other_regex = checkout(&server.url(), &marker).file(
        "tasks.toml",
        &PROJECT.replace(r"version (\d+\.\d+)", r"(building) version"),
    );
    other_regex
        .run_with(&["show"])
        .code(0)
        .stdout("building version 1.2\nbuilt building\n")
        .stderr(&format!("{BUILD_ECHO}[show] $ echo built building\n"));
    assert_eq!(runs(&marker), before + 1);
}

#[test]
fn a_second_checkout_restores_what_the_first_built_without_running() {
    let server = Server::start();
    let marks = tempfile::tempdir().unwrap();
    let marker = marks.path().join("ran");
    let first = checkout(&server.url(), &marker);
    let built = first.run_with(&["show"]);
    built
        .code(0)
        .stdout("building version 1.2\nbuilt 1.2\n")
        .stderr(&format!("{BUILD_ECHO}[show] $ echo built 1.2\n"));
    assert_eq!(runs(&marker), 1);
    assert_eq!(server.artifacts().len(), 1, "{}", built.stderr_text());

    let second = checkout(&server.url(), &marker);
    assert_ne!(first.path(), second.path());
    let restored = second.run_with(&["show"]);
    restored
        .code(0)
        .stdout("building version 1.2\nbuilt 1.2\n")
        .stderr_has("a warning\n")
        .stderr_has("[build] restored from the remote cache\n");
    assert_eq!(runs(&marker), 1, "the second checkout ran the build");
    assert!(
        !restored.stderr_text().contains("warning:"),
        "{}",
        restored.stderr_text()
    );
    for output in ["dist", "main.o"] {
        let (a, b) = (first.path().join(output), second.path().join(output));
        if a.is_dir() {
            assert_eq!(snapshot(&a), snapshot(&b), "{output} differs");
        } else {
            assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
            let mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
            assert_eq!(mtime(&a), mtime(&b));
        }
    }
    // The restore wrote the local record: the next run is up to date.
    second
        .run_with(&["build"])
        .code(0)
        .stderr_has("[build] up to date");
    assert_eq!(runs(&marker), 1);
}

#[test]
fn a_changed_source_misses_and_uploads_a_new_artifact() {
    let server = Server::start();
    let marks = tempfile::tempdir().unwrap();
    let marker = marks.path().join("ran");
    checkout(&server.url(), &marker)
        .run_with(&["build"])
        .expect(BUILT, BUILD_ECHO, 0);
    let second =
        checkout(&server.url(), &marker).file("src/main.c", "int main(void) { return 1; }\n");
    let ran = second.run_with(&["-v", "build"]);
    ran.code(0)
        .stdout(BUILT)
        .stderr_has("[build] not in the remote cache")
        .stderr_has("[build] uploaded to the remote cache (");
    assert_eq!(runs(&marker), 2);
    assert_eq!(server.artifacts().len(), 2);
    assert_eq!(second.read("dist/app"), "int main(void) { return 1; }\n");
}

#[test]
fn read_mode_never_uploads() {
    let server = Server::start();
    let marks = tempfile::tempdir().unwrap();
    let marker = marks.path().join("ran");
    let test = checkout(&server.url(), &marker);
    test.run_with(&["--remote-cache", "read", "build"])
        .expect(BUILT, BUILD_ECHO, 0);
    assert_eq!(runs(&marker), 1);
    assert_eq!(server.artifacts(), Vec::<PathBuf>::new());
    // `off` does not even ask.
    let other = checkout("http://127.0.0.1:9", &marker);
    let ran = other.run_with(&["--remote-cache", "off", "build"]);
    ran.code(0).stdout(BUILT);
    assert!(
        !ran.stderr_text().contains("warning: "),
        "{}",
        ran.stderr_text()
    );
}

#[test]
fn a_wrong_token_warns_once_and_builds() {
    let server = Server::start();
    let marks = tempfile::tempdir().unwrap();
    let marker = marks.path().join("ran");
    let test = checkout(&server.url(), &marker).env("TASKER_REMOTE_CACHE_TOKEN", "wrong");
    let ran = test.run_with(&["show"]);
    ran.code(0)
        .stdout("building version 1.2\nbuilt 1.2\n")
        .stderr_has("refused the token in TASKER_REMOTE_CACHE_TOKEN (HTTP 401)");
    assert_eq!(
        count(ran.stderr_text(), "warning: "),
        1,
        "{}",
        ran.stderr_text()
    );
    assert_eq!(runs(&marker), 1);
    assert_eq!(server.artifacts(), Vec::<PathBuf>::new());
}

#[test]
fn a_server_killed_during_the_invocation_warns_and_the_build_goes_on() {
    let mut server = Server::start();
    let test = Test::with(
        r#"
        [tasks.first]
        sources = ["a.txt"]
        run = "touch kill-now; while [ ! -e killed ]; do sleep 0.01; done; echo first"
        [tasks.second]
        sources = ["b.txt"]
        deps = ["first"]
        run = "echo second"
        "#,
    )
    .file("a.txt", "a")
    .file("b.txt", "b")
    .env("TASKER_REMOTE_CACHE_URL", &server.url())
    .env("TASKER_REMOTE_CACHE_TEAM", TEAM)
    .env("TASKER_REMOTE_CACHE_TOKEN", TOKEN)
    .arg("second");
    let child = test.spawn();
    test.wait_for_file("kill-now");
    server.kill();
    test.touch("killed");
    let ran = test.finish(child);
    ran.code(0)
        .stdout("first\nsecond\n")
        .stderr_has("cannot be reached");
    assert_eq!(
        count(ran.stderr_text(), "warning: "),
        1,
        "{}",
        ran.stderr_text()
    );
}

#[test]
fn a_tampered_signed_artifact_is_refused() {
    let server = Server::start_with(&[("TURBO_REMOTE_CACHE_SIGNATURE_KEY", "server-key")]);
    let marks = tempfile::tempdir().unwrap();
    let marker = marks.path().join("ran");
    let signed = |t: Test| t.env("TASKER_REMOTE_CACHE_SIGNATURE_KEY", "our-key");
    signed(checkout(&server.url(), &marker))
        .run_with(&["build"])
        .expect(BUILT, BUILD_ECHO, 0);
    let artifacts = server.artifacts();
    assert_eq!(artifacts.len(), 1);
    // A signed artifact restores.
    let second = signed(checkout(&server.url(), &marker));
    second
        .run_with(&["build"])
        .code(0)
        .stdout(BUILT)
        .stderr_has("restored from the remote cache");
    assert_eq!(runs(&marker), 1);
    // One byte changed in the server's storage: refused, and built.
    let mut bytes = std::fs::read(&artifacts[0]).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    std::fs::write(&artifacts[0], bytes).unwrap();
    let third = signed(checkout(&server.url(), &marker));
    let ran = third.run_with(&["build"]);
    ran.code(0)
        .stdout(BUILT)
        .stderr_has("has a signature tag that does not match; it is ignored");
    assert!(
        !ran.stderr_text().contains("restored"),
        "{}",
        ran.stderr_text()
    );
    assert_eq!(runs(&marker), 2);
    // A key other than the uploader's refuses even an intact artifact.
    let fourth =
        checkout(&server.url(), &marker).env("TASKER_REMOTE_CACHE_SIGNATURE_KEY", "another-key");
    fourth
        .run_with(&["build"])
        .code(0)
        .stdout(BUILT)
        .stderr_has("does not match");
    assert_eq!(runs(&marker), 3);
}

/// A tar header for `name` (written raw, as a hostile tool would).
fn raw_header(name: &str, kind: u8, link: &str, size: usize) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let mode: &[u8] = if kind == b'5' {
        b"0000755\0"
    } else {
        b"0000644\0"
    };
    h[100..108].copy_from_slice(mode);
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// A zstd-compressed tar archive: a valid meta.json, then `entry`.
fn crafted(name: &str, kind: u8, link: &str) -> Vec<u8> {
    crafted_entries(&[(name, kind, link)])
}

/// An archive entry: its name, its kind (a tar type flag) and where it
/// links to.
type Entry<'a> = (&'a str, u8, &'a str);

/// A zstd-compressed tar archive: a valid meta.json, then `entries`; a
/// file holds `pwned`.
fn crafted_entries(entries: &[Entry]) -> Vec<u8> {
    let meta = br#"{"format":"tasker-artifact-1","run":"build","results":{}}"#;
    let mut tar = Vec::new();
    let mut add = |name: &str, kind: u8, link: &str, body: &[u8]| {
        tar.extend_from_slice(&raw_header(name, kind, link, body.len()));
        tar.extend_from_slice(body);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    };
    add("tasker/meta.json", b'0', "", meta);
    for (name, kind, link) in entries {
        let body: &[u8] = if *kind == b'0' { b"pwned\n" } else { b"" };
        add(name, *kind, link, body);
    }
    tar.extend_from_slice(&[0u8; 1024]);
    zstd::encode_all(&tar[..], 3).unwrap()
}

#[test]
fn an_archive_entry_outside_the_outputs_is_refused() {
    let server = Server::start();
    let marks = tempfile::tempdir().unwrap();
    let marker = marks.path().join("ran");
    checkout(&server.url(), &marker)
        .run_with(&["build"])
        .expect(BUILT, BUILD_ECHO, 0);
    let artifact = server.artifacts().pop().unwrap();
    let cases = [
        (
            "out/../escaped.txt",
            b'0',
            "",
            "would land outside the outputs",
        ),
        (
            "out/dist/../../escaped.txt",
            b'0',
            "",
            "would land outside the outputs",
        ),
        ("/tmp/escaped.txt", b'0', "", "no part of an artifact"),
        (
            "out/src/main.c",
            b'0',
            "",
            "is not one of the task's outputs",
        ),
        (
            "out/dist/link",
            b'2',
            "/etc/passwd",
            "points outside the outputs",
        ),
        (
            "out/dist/link",
            b'2',
            "../src",
            "points outside the outputs",
        ),
    ];
    for (n, (name, kind, link, why)) in cases.into_iter().enumerate() {
        std::fs::write(&artifact, crafted(name, kind, link)).unwrap();
        let test = checkout(&server.url(), &marker);
        let ran = test.run_with(&["build"]);
        ran.code(0)
            .stdout(BUILT)
            .stderr_has("the remote cache's artifact is refused")
            .stderr_has(why);
        assert_eq!(runs(&marker), n + 2, "{name}");
        assert_eq!(test.read("src/main.c"), "int main(void) { return 0; }\n");
        assert!(!test.path().join("../escaped.txt").exists());
        assert!(!test.exists("escaped.txt"));
        // Nothing is left beside the outputs.
        let left: Vec<String> = std::fs::read_dir(test.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".tasker-"))
            .collect();
        assert_eq!(left, Vec::<String>::new());
    }
}

/// Whether anything lies beside the outputs after a restore.
fn left_beside(test: &Test) -> Vec<String> {
    std::fs::read_dir(test.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tasker-"))
        .collect()
}

#[test]
fn links_are_judged_by_where_they_lead_on_disk_not_by_their_text() {
    let server = Server::start();
    let marks = tempfile::tempdir().unwrap();
    let marker = marks.path().join("ran");
    checkout(&server.url(), &marker)
        .run_with(&["build"])
        .expect(BUILT, BUILD_ECHO, 0);
    let artifact = server.artifacts().pop().unwrap();
    // Each link alone passes a textual check (`s/..` is `dist` as text).
    let climb = [
        ("out/dist/s", b'2', "."),
        ("out/dist/up", b'2', "s/.."),
        ("out/dist/up2", b'2', "up/.."),
        ("out/dist/up3", b'2', "up2/.."),
    ];
    let mut through_a_link = climb.to_vec();
    through_a_link.push(("out/dist/up3/escaped.txt", b'0', ""));
    let mut directory_link_then_file = vec![
        ("out/dist", b'5', ""),
        ("out/dist/v1", b'5', ""),
        ("out/dist/latest", b'2', "v1"),
    ];
    directory_link_then_file.push(("out/dist/latest/app", b'0', ""));
    let cases: [(&[Entry], &str); 4] = [
        (
            &climb,
            "its link `dist/up` (to `s/..`) leads outside the outputs: to the task's directory",
        ),
        // A link to a link that leaves, listed before the links it goes
        // through: every link is judged once everything is staged.
        (
            &[
                ("out/dist/a", b'2', "up"),
                ("out/dist/s", b'2', "."),
                ("out/dist/up", b'2', "s/.."),
            ],
            "its link `dist/a` (to `up`) leads outside the outputs: to the task's directory",
        ),
        (
            &through_a_link,
            "its entry `dist/up3/escaped.txt` would be written through the link `dist/up3`",
        ),
        (
            &directory_link_then_file,
            "its entry `dist/latest/app` would be written through the link `dist/latest`",
        ),
    ];
    for (n, (entries, why)) in cases.into_iter().enumerate() {
        std::fs::write(&artifact, crafted_entries(entries)).unwrap();
        let test = checkout(&server.url(), &marker);
        let ran = test.run_with(&["build"]);
        ran.code(0)
            .stdout(BUILT)
            .stderr_has("[build] warning: the remote cache's artifact is refused: ")
            .stderr_has(why);
        assert!(
            !ran.stderr_text().contains("restored"),
            "{}",
            ran.stderr_text()
        );
        assert_eq!(runs(&marker), n + 2, "{why}");
        // The run made its own outputs.
        assert_eq!(test.read("dist/app"), "int main(void) { return 0; }\n");
        assert!(!test.exists("escaped.txt"));
        assert!(!test.path().join("../escaped.txt").exists());
        assert_eq!(left_beside(&test), Vec::<String>::new());
    }
}

#[test]
fn links_that_stay_inside_the_outputs_are_restored() {
    let server = Server::start();
    let marks = tempfile::tempdir().unwrap();
    let marker = marks.path().join("ran");
    checkout(&server.url(), &marker)
        .run_with(&["build"])
        .expect(BUILT, BUILD_ECHO, 0);
    let artifact = server.artifacts().pop().unwrap();
    std::fs::write(
        &artifact,
        crafted_entries(&[
            ("out/dist", b'5', ""),
            ("out/dist/v1", b'5', ""),
            ("out/dist/v1/app", b'0', ""),
            ("out/dist/latest", b'2', "v1"),
            ("out/dist/a", b'2', "latest/app"),
            ("out/dist/sub", b'5', ""),
            ("out/dist/sub/up", b'2', "../v1/app"),
            ("out/main.o", b'2', "dist/a"),
        ]),
    )
    .unwrap();
    let test = checkout(&server.url(), &marker);
    let ran = test.run_with(&["build"]);
    ran.code(0)
        .stderr_has("[build] restored from the remote cache");
    assert!(
        !ran.stderr_text().contains("warning"),
        "{}",
        ran.stderr_text()
    );
    assert_eq!(runs(&marker), 1);
    for path in [
        "dist/v1/app",
        "dist/latest/app",
        "dist/a",
        "dist/sub/up",
        "main.o",
    ] {
        assert_eq!(test.read(path), "pwned\n", "{path}");
    }
    let link = |p: &str| std::fs::read_link(test.path().join(p)).unwrap();
    assert_eq!(link("dist/latest"), PathBuf::from("v1"));
    assert_eq!(link("main.o"), PathBuf::from("dist/a"));
    assert_eq!(left_beside(&test), Vec::<String>::new());
}

/// A port that accepts connections, counts them, and never answers.
fn silent_port() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    (port, accepted)
}

const FOUR_TASKS: &str = r#"
    [tasks.all]
    deps = ["a", "b", "c", "d"]
    [tasks.a]
    sources = ["a.txt"]
    run = "echo a"
    [tasks.b]
    sources = ["a.txt"]
    run = "echo b"
    [tasks.c]
    sources = ["a.txt"]
    run = "echo c"
    [tasks.d]
    sources = ["a.txt"]
    run = "echo d"
"#;

#[test]
fn a_silent_server_costs_one_timeout_per_invocation() {
    let (port, accepted) = silent_port();
    let test = Test::with(FOUR_TASKS)
        .file("a.txt", "a")
        .env(
            "TASKER_REMOTE_CACHE_URL",
            &format!("http://127.0.0.1:{port}"),
        )
        .env("TASKER_REMOTE_CACHE_TEAM", TEAM)
        .env("TASKER_TEST_REMOTE_TIMEOUT_MS", "300");
    let ran = test.run_with(&["-j4", "--output", "grouped", "all"]);
    ran.code(0)
        .stderr_has("cannot be reached (no answer within 0.3s)");
    for name in ["a", "b", "c", "d"] {
        assert!(
            ran.stdout_text().contains(&format!("{name}\n")),
            "{}",
            ran.stdout_text()
        );
    }
    assert_eq!(
        count(ran.stderr_text(), "warning: "),
        1,
        "{}",
        ran.stderr_text()
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "{}", ran.stderr_text());
}

#[test]
fn a_closed_port_warns_once_and_a_task_with_cache_false_never_asks() {
    let port = free_port();
    let test = Test::with(FOUR_TASKS)
        .file("a.txt", "a")
        .env(
            "TASKER_REMOTE_CACHE_URL",
            &format!("http://127.0.0.1:{port}"),
        )
        .env("TASKER_REMOTE_CACHE_TEAM", TEAM);
    let ran = test.run_with(&["-j4", "all"]);
    ran.code(0).stderr_has("cannot be reached");
    let mut lines: Vec<&str> = ran.stdout_text().lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["a   | a", "b   | b", "c   | c", "d   | d"]);
    assert_eq!(
        count(ran.stderr_text(), "warning: "),
        1,
        "{}",
        ran.stderr_text()
    );

    let (port, accepted) = silent_port();
    let opted_out = Test::with(
        r#"
        [tasks.a]
        sources = ["a.txt"]
        cache = false
        run = "echo a"
        "#,
    )
    .file("a.txt", "a")
    .env(
        "TASKER_REMOTE_CACHE_URL",
        &format!("http://127.0.0.1:{port}"),
    )
    .env("TASKER_REMOTE_CACHE_TEAM", TEAM);
    let ran = opted_out.run_with(&["a"]);
    ran.code(0).stdout("a\n");
    assert!(
        !ran.stderr_text().contains("warning: "),
        "{}",
        ran.stderr_text()
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

#[test]
fn ctrl_c_during_a_download_stops_at_once_and_leaves_no_outputs() {
    // A server that sends the start of an artifact, then stalls.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sent, stalled) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n",
            );
            let _ = stream.write_all(&[0x28, 0xb5, 0x2f, 0xfd]);
            let _ = stream.flush();
            held.push(stream);
            let _ = sent.send(());
        }
    });
    let marks = tempfile::tempdir().unwrap();
    let marker = marks.path().join("ran");
    let test = checkout(&format!("http://127.0.0.1:{port}"), &marker)
        .env("TASKER_TEST_REMOTE_TIMEOUT_MS", "120000")
        .arg("build");
    let child = test.spawn();
    stalled
        .recv_timeout(Duration::from_secs(30))
        .expect("tasker asked for the artifact");
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let ran = test.finish(child);
    ran.code(130);
    assert_eq!(runs(&marker), 0, "{}", ran.stderr_text());
    assert!(!test.exists("dist") && !test.exists("main.o"));
    assert!(
        !ran.stderr_text().contains("warning: "),
        "{}",
        ran.stderr_text()
    );
}

#[test]
fn dry_run_says_which_runs_would_ask_and_listing_and_timings_show_the_cache() {
    let server = Server::start();
    let marks = tempfile::tempdir().unwrap();
    let marker = marks.path().join("ran");
    let first = checkout(&server.url(), &marker);
    first
        .run_with(&["-n", "build"])
        .code(0)
        .stderr_has("[build] would ask the remote cache\n");
    assert_eq!(server.artifacts(), Vec::<PathBuf>::new());
    let json: serde_json::Value =
        serde_json::from_str(first.run_with(&["-l", "--json"]).stdout_text()).unwrap();
    assert_eq!(json["tasks"][0]["cache"], "miss");
    assert_eq!(json["tasks"][1]["cache"], serde_json::Value::Null);
    first.run_with(&["build"]).expect(BUILT, BUILD_ECHO, 0);
    let json: serde_json::Value =
        serde_json::from_str(first.run_with(&["-l", "--json"]).stdout_text()).unwrap();
    assert_eq!(json["tasks"][0]["up_to_date"], true);
    assert_eq!(json["tasks"][0]["cache"], serde_json::Value::Null);

    let second = checkout(&server.url(), &marker);
    let json: serde_json::Value =
        serde_json::from_str(second.run_with(&["-l", "--json"]).stdout_text()).unwrap();
    assert_eq!(json["tasks"][0]["up_to_date"], false);
    assert_eq!(json["tasks"][0]["cache"], "hit");
    let ran = second.run_with(&["--timings", "show"]);
    ran.code(0).stdout("building version 1.2\nbuilt 1.2\n");
    let table: Vec<&str> = ran
        .stderr_text()
        .lines()
        .skip_while(|l| !l.starts_with("run "))
        .collect();
    assert!(
        table[0].ends_with("result     cache"),
        "{}",
        ran.stderr_text()
    );
    let build = table.iter().find(|l| l.starts_with("build")).unwrap();
    assert!(build.ends_with("restored   hit"), "{}", ran.stderr_text());
    // Up to date now, and the listing says how its success came about.
    let json: serde_json::Value =
        serde_json::from_str(second.run_with(&["-l", "--json"]).stdout_text()).unwrap();
    assert_eq!(json["tasks"][0]["up_to_date"], true);
    assert_eq!(json["tasks"][0]["recorded"], "restored");
    let json: serde_json::Value =
        serde_json::from_str(first.run_with(&["-l", "--json"]).stdout_text()).unwrap();
    assert_eq!(json["tasks"][0]["recorded"], "ran");
}

#[test]
fn the_file_and_the_flag_are_checked() {
    Test::with(
        r#"
        [settings]
        remote_cache = { url = "cache.example.com", team = "web" }
        "#,
    )
    .run_with(&["--check"])
    .code(2)
    .stderr_has("is not an http:// or https:// URL");
    Test::with(
        r#"
        [settings]
        remote_cache = { url = "https://cache.example.com", team = "web", token = "x" }
        "#,
    )
    .run_with(&["--check"])
    .code(2)
    .stderr_has("the remote cache's token is never read from the file");
    let t = Test::with(
        r#"
        [tasks.a]
        run = "true"
        "#,
    );
    t.run_with(&["--remote-cache", "read", "a"])
        .code(2)
        .stderr_has("--remote-cache read needs a server");
    t.run_with(&["--remote-cache", "sometimes", "a"]).expect(
        "",
        "error: invalid value 'sometimes' for '--remote-cache <MODE>'\n  [possible values: readwrite, read, off]\n\nFor more information, try '--help'.\n",
        2,
    );
    Test::with(
        r#"
        [settings]
        remote_cache = { url = "https://cache.example.com" }
        [tasks.a]
        run = "true"
        "#,
    )
    .env_remove("TASKER_REMOTE_CACHE_TEAM")
    .run_with(&["a"])
    .code(2)
    .stderr_has("the remote cache needs a team");
}

#[test]
fn an_upload_the_server_refuses_is_a_warning_and_the_build_succeeds() {
    let server = Server::start_with(&[("BODY_LIMIT", "2000")]);
    // Text that does not compress: xorshift64, 6 bits a letter.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: String = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                    [(x >> 58) as usize],
            )
        })
        .collect();
    let test = Test::with(
        r#"
        [tasks.big]
        sources = ["src/**"]
        outputs = ["dist"]
        run = "mkdir -p dist && cp src/noise dist/"
        "#,
    )
    .file("src/noise", &noise)
    .env("TASKER_REMOTE_CACHE_URL", &server.url())
    .env("TASKER_REMOTE_CACHE_TEAM", TEAM)
    .env("TASKER_REMOTE_CACHE_TOKEN", TOKEN);
    let ran = test.run_with(&["big"]);
    ran.code(0).stderr_has(
        "[big] warning: the remote cache could not upload an artifact: the server answered HTTP 413",
    );
    assert_eq!(server.artifacts(), Vec::<PathBuf>::new());
    // The local record was written all the same.
    test.run_with(&["big"])
        .code(0)
        .stderr_has("[big] up to date");
}

/// A server that answers 404 to the first request at once, then holds
/// every request until `together` of them are waiting at the same time
/// (or 20 s passed: then it notes that they never overlapped).
fn overlap_server(together: usize) -> (u16, Arc<std::sync::Mutex<(usize, bool)>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // (requests waiting or answered, whether `together` waited at once)
    let state = Arc::new((
        std::sync::Mutex::new((0usize, false)),
        std::sync::Condvar::new(),
    ));
    let seen = Arc::new(std::sync::Mutex::new((0usize, false)));
    let report = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let state = Arc::clone(&state);
            let report = Arc::clone(&report);
            std::thread::spawn(move || serve_held(stream, &state, &report, together));
        }
    });
    (port, seen)
}

fn serve_held(
    mut stream: TcpStream,
    state: &(std::sync::Mutex<(usize, bool)>, std::sync::Condvar),
    report: &std::sync::Mutex<(usize, bool)>,
    together: usize,
) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        request.clear();
        let (lock, cvar) = state;
        let mut s = lock.lock().unwrap();
        s.0 += 1;
        let number = s.0;
        if number > 1 {
            // Held until `together` requests after the first are here.
            let end = Instant::now() + Duration::from_secs(20);
            while s.0 < 1 + together && Instant::now() < end {
                cvar.notify_all();
                s = cvar.wait_timeout(s, Duration::from_millis(50)).unwrap().0;
            }
            s.1 |= s.0 > together;
            cvar.notify_all();
        }
        *report.lock().unwrap() = *s;
        drop(s);
        let answer = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        if stream.write_all(answer).is_err() {
            return;
        }
    }
}

#[test]
fn lookups_of_independent_runs_overlap_even_one_run_at_a_time() {
    let (port, seen) = overlap_server(4);
    let test = Test::with(
        r#"
        [tasks.all]
        deps = ["a", "b", "c", "d", "e"]
        [tasks.a]
        sources = ["x.txt"]
        run = "echo a"
        [tasks.b]
        sources = ["x.txt"]
        run = "echo b"
        [tasks.c]
        sources = ["x.txt"]
        run = "echo c"
        [tasks.d]
        sources = ["x.txt"]
        run = "echo d"
        [tasks.e]
        sources = ["x.txt"]
        run = "echo e"
        "#,
    )
    .file("x.txt", "x")
    .env(
        "TASKER_REMOTE_CACHE_URL",
        &format!("http://127.0.0.1:{port}"),
    )
    .env("TASKER_REMOTE_CACHE_TEAM", TEAM);
    let ran = test.run_with(&["-j1", "--remote-cache", "read", "all"]);
    ran.code(0).stdout("a\nb\nc\nd\ne\n");
    assert!(
        !ran.stderr_text().contains("warning: "),
        "{}",
        ran.stderr_text()
    );
    let (requests, overlapped) = *seen.lock().unwrap();
    assert_eq!(requests, 5, "{}", ran.stderr_text());
    assert!(
        overlapped,
        "the lookups after the first waited for each other"
    );
}

#[test]
fn ctrl_c_while_an_upload_waits_stops_at_once() {
    // A server without the artifact that never answers an upload.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sent, uploading) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut stream in listener.incoming().flatten() {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            if request.starts_with(b"PUT ") {
                let _ = sent.send(());
            } else {
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
            held.push(stream);
        }
    });
    let marks = tempfile::tempdir().unwrap();
    let marker = marks.path().join("ran");
    let test = checkout(&format!("http://127.0.0.1:{port}"), &marker)
        .env("TASKER_TEST_REMOTE_TIMEOUT_MS", "120000")
        .arg("build");
    let child = test.spawn();
    uploading
        .recv_timeout(Duration::from_secs(30))
        .expect("tasker uploaded the artifact");
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let ran = test.finish(child);
    ran.code(130).stdout(BUILT);
    assert_eq!(runs(&marker), 1);
    assert!(
        !ran.stderr_text().contains("warning: "),
        "{}",
        ran.stderr_text()
    );
}

/// How a misbehaving server answers. Its artifact, when it has one, is
/// `SLOW_SIZE` bytes, so that a download's deadline is the base (1 s in
/// these tests) plus 2 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Misbehaviour {
    /// A HEAD says the size; a GET's headers come one byte at a time.
    DribbledHeaders,
    /// A HEAD says the size; a GET's body comes one byte at a time.
    DribbledBody,
    /// A HEAD says no size, a GET does, and its body comes one byte at a
    /// time.
    SizedOnlyByGet,
    /// A HEAD says no size, and a GET's body is chunked (as
    /// turborepo-remote-cache answers), one byte at a time.
    DribbledChunks,
    /// A HEAD says the size; a GET sends half the body, then nothing.
    Stalled,
    /// No artifact; the answer to an upload comes one byte at a time.
    DribbledUploadAnswer,
}

const SLOW_SIZE: usize = 2 << 20;

/// A server that misbehaves `how`, and the methods of the requests it got.
fn misbehaving(how: Misbehaviour) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let methods = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&methods);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || serve_badly(stream, how, &seen));
        }
    });
    (url, methods)
}

fn serve_badly(mut stream: TcpStream, how: Misbehaviour, seen: &std::sync::Mutex<Vec<String>>) {
    use Misbehaviour::*;
    let mut buf = [0u8; 4096];
    loop {
        let mut request = Vec::new();
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let method = String::from_utf8_lossy(&request)
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_string();
        seen.lock().unwrap().push(method.clone());
        let sized = format!("HTTP/1.1 200 OK\r\nContent-Length: {SLOW_SIZE}\r\n\r\n");
        let answered = match (method.as_str(), how) {
            ("HEAD", DribbledUploadAnswer) => {
                stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            }
            ("HEAD", DribbledChunks | SizedOnlyByGet) => {
                stream.write_all(b"HTTP/1.1 200 OK\r\n\r\n")
            }
            ("HEAD", _) => stream.write_all(sized.as_bytes()),
            ("GET", DribbledHeaders) | ("PUT", DribbledUploadAnswer) => {
                return dribble(&mut stream, b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a")
            }
            ("GET", DribbledBody | SizedOnlyByGet) => {
                return dribble(&mut stream, sized.as_bytes(), b"a")
            }
            ("GET", DribbledChunks) => {
                let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
                return dribble(&mut stream, head, b"1\r\na\r\n");
            }
            ("GET", Stalled) => {
                let _ = stream.write_all(sized.as_bytes());
                let _ = stream.write_all(&vec![0u8; SLOW_SIZE / 2]);
                // Held open until tasker gives up on it.
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
                return;
            }
            _ => return,
        };
        if answered.is_err() {
            return;
        }
    }
}

/// Write `head`, then `piece` every 50 ms until the peer goes (or a
/// minute passed).
fn dribble(stream: &mut TcpStream, head: &[u8], piece: &[u8]) {
    let end = Instant::now() + Duration::from_secs(60);
    let mut sent = stream.write_all(head);
    while sent.is_ok() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
        sent = stream.write_all(piece);
    }
}

/// Two runs to ask about (the second after the first), against a server
/// that misbehaves `how`: tasker ends well within its bound, with one
/// warning that says `why`, both runs made, and nothing asked after the
/// request that failed. `asked` is what the server saw.
#[track_caller]
fn costs_at_most_the_deadline(how: Misbehaviour, why: &str, asked: &[&str]) {
    let (url, methods) = misbehaving(how);
    let test = Test::with(
        r#"
        [tasks.first]
        sources = ["a.txt"]
        run = "echo first"
        [tasks.second]
        sources = ["a.txt"]
        deps = ["first"]
        run = "echo second"
        "#,
    )
    .file("a.txt", "a")
    .env("TASKER_REMOTE_CACHE_URL", &url)
    .env("TASKER_REMOTE_CACHE_TEAM", TEAM)
    .env("TASKER_TEST_REMOTE_TIMEOUT_MS", "1000");
    let started = Instant::now();
    let target = if how == Misbehaviour::DribbledUploadAnswer {
        "first"
    } else {
        "second"
    };
    let ran = test.run_with(&[target]);
    let took = started.elapsed();
    ran.stderr_has(why);
    ran.code(0);
    assert!(
        ran.stdout_text().starts_with("first\n"),
        "{}",
        ran.stdout_text()
    );
    assert_eq!(
        count(ran.stderr_text(), "warning: "),
        1,
        "{how:?}: {}",
        ran.stderr_text()
    );
    assert_eq!(
        *methods.lock().unwrap(),
        asked,
        "{how:?}: {}",
        ran.stderr_text()
    );
    // The deadline is about 3 s; the bound leaves room for a loaded machine.
    assert!(took < Duration::from_secs(30), "{how:?} took {took:?}");
}

#[test]
fn a_server_that_dribbles_costs_at_most_the_deadline_of_the_request() {
    costs_at_most_the_deadline(
        Misbehaviour::DribbledBody,
        "is too slow (the download of 2.0 MiB did not end within its deadline of 3s); it is not asked again in this invocation",
        &["HEAD", "GET"],
    );
    // The GET says the size the HEAD did not: asked again, with the
    // deadline of that size.
    costs_at_most_the_deadline(
        Misbehaviour::SizedOnlyByGet,
        "is too slow (the download of 2.0 MiB did not end within its deadline of 3s)",
        &["HEAD", "GET", "GET"],
    );
    // The size unknown, the deadline grows with the bytes that came.
    costs_at_most_the_deadline(
        Misbehaviour::DribbledChunks,
        "is too slow (the download fell behind its deadline of 1s plus 1s per MiB: ",
        &["HEAD", "GET"],
    );
}

#[test]
fn a_server_that_never_ends_its_headers_or_stalls_costs_at_most_the_deadline() {
    costs_at_most_the_deadline(
        Misbehaviour::DribbledHeaders,
        "cannot be reached (no answer within 3s); it is not asked again in this invocation",
        &["HEAD", "GET"],
    );
    costs_at_most_the_deadline(
        Misbehaviour::Stalled,
        "is too slow (the download of 2.0 MiB stalled: nothing came for 1s)",
        &["HEAD", "GET"],
    );
}

#[test]
fn an_upload_whose_answer_dribbles_costs_at_most_the_deadline() {
    costs_at_most_the_deadline(
        Misbehaviour::DribbledUploadAnswer,
        "did not end within its deadline of 1s); it is not asked again in this invocation",
        &["HEAD", "PUT"],
    );
}
