//! Images from OCI registries against a real registry (Debian's `docker-registry`, the CNCF
//! distribution registry) on a free loopback port; the compile cache's checksum (issue 16,
//! fault 4); image files that are not regular files (issue 16, fault 9).

use std::path::Path;
use std::process::Command;

use shoal::registry::local::{LocalRegistry, Options};

use crate::support::{arg, image, stderr, stdout, test_certificates, Sandbox};

const HELLO_BANNER: &str = "Hello from a shoal container!";

fn registry(sandbox: &Sandbox, options: &Options) -> LocalRegistry {
    LocalRegistry::start_in(&sandbox.path().join("registry"), options).expect("start docker-registry")
}

fn sha256(bytes: &[u8]) -> String {
    shoal::spec::ImageDigest::of(bytes).to_string()
}

fn curl(args: &[&str]) -> String {
    let output = Command::new("curl")
        .args(["-sS", "--fail-with-body"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "curl {args:?}: {}{}",
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

/// Upload one blob by the distribution API's monolithic flow (POST, then PUT with the digest).
fn curl_blob(host: &str, repo: &str, file: &Path) -> (String, usize) {
    let bytes = std::fs::read(file).unwrap();
    let digest = sha256(&bytes);
    let headers = curl(&[
        "-X",
        "POST",
        "-D",
        "-",
        "-o",
        "/dev/null",
        &format!("http://{host}/v2/{repo}/blobs/uploads/"),
    ]);
    let location = headers
        .lines()
        .find_map(|l| l.strip_prefix("Location: ").or_else(|| l.strip_prefix("location: ")))
        .expect("Location header")
        .trim()
        .to_string();
    let location = if location.starts_with('/') {
        format!("http://{host}{location}")
    } else {
        location
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{location}{sep}digest={digest}"),
    ]);
    (digest, bytes.len())
}

/// Push `wasm` as `host/repo:tag` in the CNCF wasm layout with plain HTTP calls (not
/// shoal): as wasmtime's and wasmCloud's tools lay it out. Returns the manifest digest.
fn push_with_curl(sandbox: &Sandbox, host: &str, repo: &str, tag: &str, wasm: &Path) -> String {
    let (layer, layer_size) = curl_blob(host, repo, wasm);
    let config = sandbox.write(
        "wasm-config.json",
        &format!(
            r#"{{"created":"2026-01-01T00:00:00Z","architecture":"wasm","os":"wasip1","layerDigests":["{layer}"]}}"#
        ),
    );
    let (config_digest, config_size) = curl_blob(host, repo, &config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.wasm.config.v0+json","digest":"{config_digest}","size":{config_size}}},"layers":[{{"mediaType":"application/wasm","digest":"{layer}","size":{layer_size}}}]}}"#
    );
    let file = sandbox.write("manifest.json", &manifest);
    curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.manifest.v1+json",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("http://{host}/v2/{repo}/manifests/{tag}"),
    ]);
    sha256(manifest.as_bytes())
}

#[test]
fn an_artifact_pushed_by_plain_http_calls_pulls_pins_and_runs() {
    let sandbox = Sandbox::new();
    let registry = registry(&sandbox, &Options::default());
    let host = registry.host();
    let pinned = push_with_curl(&sandbox, &host, "test/hello", "1", &image("hello.wasm"));
    let reference = format!("{host}/test/hello:1");
    let compose = sandbox.write(
        "shoal.yaml",
        &format!("name: reg\ncontainers:\n  hello:\n    image: {reference}\n"),
    );
    // Never pulled: the `image:` line, exit 1, and the command that fixes it.
    let err = sandbox.fails(&["config", "-f", arg(&compose)], 1);
    assert!(err.contains("shoal.yaml:4:12"), "{err}");
    assert!(
        err.contains("has never been pulled") && err.contains(&format!("shoal images pull {reference}")),
        "{err}"
    );

    let pulled = sandbox.ok(&["pull", "-f", arg(&compose)]);
    assert!(pulled.contains(&pinned), "{pulled}");
    let listed = sandbox.ok(&["images", "ls"]);
    assert!(listed.contains(&reference) && listed.contains(&pinned), "{listed}");
    let config = sandbox.ok(&["config", "-f", arg(&compose)]);
    assert!(config.contains(&reference) && config.contains(&pinned), "{config}");
    let resolved = sandbox.ok(&["config", "--resolve-image-digests", "-f", arg(&compose)]);
    assert!(
        resolved.contains(&format!("{host}/test/hello:1@{pinned}")),
        "{resolved}"
    );
    // The pinned form loads again, from the store, with the same digest.
    let pinned_file = sandbox.write(
        "pinned.yaml",
        &format!("name: reg\ncontainers:\n  hello:\n    image: {host}/test/hello@{pinned}\n"),
    );
    sandbox.ok(&["config", "-q", "-f", arg(&pinned_file)]);

    let out = sandbox.ok(&["run", &reference]);
    assert!(out.contains(HELLO_BANNER), "{out}");
}

#[test]
fn shoal_pushes_over_tls_with_auth_and_a_fresh_board_pulls_it_back() {
    let sandbox = Sandbox::new();
    let (ca, cert, key) = test_certificates(&sandbox.path().join("tls"), "shoal registry test CA");
    let options = Options {
        user: Some(("fleet".into(), "s3cret".into())),
        tls: Some((cert, key)),
    };
    let registry = registry(&sandbox, &options);
    let reference = format!("{}/fleet/hello:2", registry.host());
    let hello = image("hello.wasm");

    // No credentials: the registry's refusal in words.
    let mut push = sandbox.command(&["images", "push", arg(&hello), &reference]);
    push.env("SHOAL_REGISTRY_CA_FILE", &ca)
        .env("DOCKER_CONFIG", sandbox.path().join("nodocker"));
    let output = sandbox.run_command(push, &["images", "push"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let refused = stderr(&output).to_lowercase();
    assert!(
        refused.contains("authori") || refused.contains("authenticat"),
        "{refused}"
    );

    // Credentials from the environment and a password file; an index with an arm64 .cwasm.
    let password = sandbox.write("password", "s3cret\n");
    let mut push = sandbox.command(&["images", "push", "--platform", "linux/arm64", arg(&hello), &reference]);
    push.env("SHOAL_REGISTRY_CA_FILE", &ca)
        .env("SHOAL_REGISTRY_USER", "fleet")
        .env("SHOAL_REGISTRY_PASSWORD_FILE", &password);
    let output = sandbox.run_command(push, &["images", "push"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let pushed = stdout(&output);
    assert!(pushed.contains("pushed") && pushed.contains("@sha256:"), "{pushed}");

    // A fresh board (its own data dir), credentials from Docker's config.json.
    let board = Sandbox::new();
    let docker = board.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"ZmxlZXQ6czNjcmV0"}}}}}}"#, registry.host()),
    )
    .unwrap();
    let mut pull = board.command(&["images", "pull", &reference]);
    pull.env("SHOAL_REGISTRY_CA_FILE", &ca).env("DOCKER_CONFIG", &docker);
    let output = board.run_command(pull, &["images", "pull"]);
    assert!(output.status.success(), "{}", stderr(&output));
    // A full shoal takes the portable .wasm from the index.
    let pulled = stdout(&output);
    let wasm_digest = sha256(&std::fs::read(&hello).unwrap());
    assert!(pulled.contains(&wasm_digest) && pulled.contains(".wasm"), "{pulled}");
    let out = board.ok(&["run", &reference]);
    assert!(out.contains(HELLO_BANNER), "{out}");
}

#[test]
fn with_the_registry_down_pulled_images_run_and_a_missing_one_fails_at_its_line() {
    let sandbox = Sandbox::new();
    let mut registry = registry(&sandbox, &Options::default());
    let host = registry.host();
    for (name, file) in [("hello", "hello.wasm"), ("other", "exit-code.wasm")] {
        sandbox.ok(&["images", "push", arg(&image(file)), &format!("{host}/t/{name}:1")]);
    }
    sandbox.ok(&["images", "pull", &format!("{host}/t/hello:1")]);
    registry.stop();

    let pulled = sandbox.write(
        "pulled.yaml",
        &format!("name: down\ncontainers:\n  hello:\n    image: {host}/t/hello:1\n"),
    );
    sandbox.ok(&["config", "-q", "-f", arg(&pulled)]);
    let out = sandbox.ok(&["up", "-f", arg(&pulled)]);
    assert!(out.contains(HELLO_BANNER), "{out}");

    let missing = sandbox.write(
        "missing.yaml",
        &format!(
            "name: down\ncontainers:\n  hello:\n    image: {host}/t/hello:1\n  other:\n    image: {host}/t/other:1\n"
        ),
    );
    let err = sandbox.fails(&["config", "-f", arg(&missing)], 1);
    assert!(
        err.contains("missing.yaml:6:12") && err.contains("never been pulled"),
        "{err}"
    );
    // A pull attempted while the registry is down: its error in words at the same line.
    sandbox.fails(&["pull", "-f", arg(&missing)], 1);
    let err = sandbox.fails(&["config", "-f", arg(&missing)], 1);
    assert!(
        err.contains("missing.yaml:6:12")
            && err.contains("last pull failed: ")
            && err.contains("cannot reach the registry"),
        "{err}"
    );
}

#[test]
fn a_tampered_blob_is_refused_and_the_image_pulled_before_is_kept() {
    let sandbox = Sandbox::new();
    let registry = registry(&sandbox, &Options::default());
    let reference = format!("{}/t/app:latest", registry.host());
    sandbox.ok(&["images", "push", arg(&image("hello.wasm")), &reference]);
    sandbox.ok(&["images", "pull", &reference]);
    let before = sandbox.ok(&["images", "ls"]);

    // A new version is pushed, then its blob is damaged in the registry's storage.
    let next = image("exit-code.wasm");
    sandbox.ok(&["images", "push", arg(&next), &reference]);
    let hex = sha256(&std::fs::read(&next).unwrap())[7..].to_string();
    let data = registry
        .storage()
        .join(format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]));
    let mut bytes = std::fs::read(&data).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();

    let err = sandbox.fails(&["images", "pull", &reference], 1);
    assert!(
        err.contains("do not match") || err.contains("not sha256") || err.contains("hash to"),
        "{err}"
    );
    assert_eq!(sandbox.ok(&["images", "ls"]), before);
    let out = sandbox.ok(&["run", &reference]);
    assert!(out.contains(HELLO_BANNER), "the image pulled before still runs: {out}");
}

/// `shoal images add hello.wasm` then `shoal run hello` (issue 17, item 4).
#[test]
fn run_takes_a_store_name_or_a_digest_prefix() {
    let sandbox = Sandbox::new();
    let added = sandbox.ok(&["images", "add", arg(&image("hello.wasm"))]);
    let hex = added
        .trim_start_matches("sha256:")
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(sandbox.ok(&["run", "hello"]).contains(HELLO_BANNER));
    assert!(sandbox.ok(&["run", "hello.wasm"]).contains(HELLO_BANNER));
    assert!(sandbox.ok(&["run", &hex[..10]]).contains(HELLO_BANNER));
    let err = sandbox.fails(&["run", "nosuch"], 1);
    assert!(
        err.contains("no image matches `nosuch`") && err.contains("registry reference"),
        "{err}"
    );
}

/// Issue 16, fault 4: bytes of a cached `.cwasm` overwritten in place (same size) killed
/// shoal by SIGTRAP with no message. The entry's checksum catches it: one warning naming
/// the file, the entry deleted and compiled again, the container runs.
#[test]
fn a_damaged_compile_cache_entry_is_reported_once_and_compiled_again() {
    let sandbox = Sandbox::new();
    let hello = image("hello.wasm");
    assert!(sandbox.ok(&["run", arg(&hello)]).contains(HELLO_BANNER));
    let cache = sandbox.path().join("data/cache");
    let entry = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .flat_map(|engine| std::fs::read_dir(engine.path()).unwrap().flatten())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .expect("a cached .cwasm");
    let mut bytes = std::fs::read(&entry).unwrap();
    let (start, len) = text_section(&bytes).expect("a .text section in the cached ELF");
    // Trap instructions over the machine code: what a damaged disk could leave.
    let fill = if cfg!(target_arch = "x86_64") { 0xcc } else { 0x00 };
    bytes[start..start + len].fill(fill);
    std::fs::write(&entry, &bytes).unwrap();

    let output = sandbox.run(&["run", arg(&hello)]);
    assert!(output.status.success(), "{}\n{}", output.status, stderr(&output));
    assert!(stdout(&output).contains(HELLO_BANNER));
    let err = stderr(&output);
    assert!(
        err.contains("warning: compile cache entry") && err.contains(arg(&entry)) && err.contains("checksum"),
        "{err}"
    );
    // Once: the entry is replaced by a good one.
    let again = sandbox.run(&["run", arg(&hello)]);
    assert!(
        again.status.success() && !stderr(&again).contains("warning"),
        "{}",
        stderr(&again)
    );
}

/// The `.text` section (offset, size) of an ELF64 little-endian file.
fn text_section(elf: &[u8]) -> Option<(usize, usize)> {
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    let (shoff, shentsize, shnum, shstrndx) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let section = |i: usize| shoff + i * shentsize;
    let strtab = u64_at(section(shstrndx) + 0x18);
    (0..shnum).find_map(|i| {
        let name_at = strtab + u32::from_le_bytes(elf[section(i)..section(i) + 4].try_into().unwrap()) as usize;
        let name = elf[name_at..].split(|b| *b == 0).next()?;
        (name == b".text").then(|| (u64_at(section(i) + 0x18), u64_at(section(i) + 0x20)))
    })
}

/// Issue 16, fault 9: `image: /dev/zero` read 2 GB in 3 s; a FIFO hung. Only regular files
/// are read, and the error is at the `image:` line.
#[test]
fn devices_and_fifos_as_images_are_refused_at_their_line() {
    let sandbox = Sandbox::new();
    let fifo = sandbox.path().join("pipe.wasm");
    let c = std::ffi::CString::new(arg(&fifo)).unwrap();
    // SAFETY: mkfifo(3) on a path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for (image, what) in [("/dev/zero", "a device"), (arg(&fifo), "a FIFO")] {
        let compose = sandbox.write(
            "shoal.yaml",
            &format!("name: dev\ncontainers:\n  z:\n    image: {image}\n"),
        );
        let err = sandbox.fails(&["config", "-f", arg(&compose)], 1);
        assert!(
            err.contains("shoal.yaml:4:12") && err.contains(&format!("it is {what}, not a regular file")),
            "{err}"
        );
    }
    let err = sandbox.fails(&["images", "add", "/dev/zero"], 1);
    assert!(err.contains("not a regular file"), "{err}");
    let err = sandbox.fails(&["images", "add", arg(&fifo)], 1);
    assert!(err.contains("a FIFO"), "{err}");
}
