//! `shoal config` through the binary: the golden diagnostics of `tests/golden/config`
//! (checked against the library in `spec`'s unit tests) must be exactly what a user sees,
//! with the documented exit codes.

use crate::support::*;

/// The golden cases that need nothing from the unit tests' environment (the `images` and
/// `interpolation` cases use a fake image store and variables set by those tests), as
/// `shoal config -q` prints them from the repository root.
#[test]
fn golden_diagnostics_match_the_binary() {
    let dir = repo().join("tests/golden/config");
    let mut cases = 0;
    for case in [
        "all_five",
        "bridges",
        "depends",
        "docker_keys",
        "empty",
        "fields",
        "limits",
        "syntax",
        "ok",
    ] {
        let path = dir.join(format!("{case}.yaml"));
        let expected_path = path.with_extension("stderr");
        let expected = std::fs::read_to_string(&expected_path).unwrap();
        cases += 1;
        let relative = path.strip_prefix(repo()).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_shoal"))
            .env_remove("SHOAL_GOLDEN_UNSET_PASSWORD")
            .args(["config", "-q", "-f"])
            .arg(relative)
            .current_dir(repo())
            .env("SHOAL_DATA_DIR", repo().join("target/test-data-config"))
            .output()
            .unwrap();
        let mut expected = expected.replace("$ROOT", &repo().display().to_string());
        // The library's golden lines are followed by what only the binary adds: the image
        // check's warnings (for a file without errors) and the error count.
        let errors = expected.lines().filter(|l| l.starts_with("error:")).count();
        if case == "ok" {
            expected.push_str(
                "warning: tests/golden/config/ok.yaml:8:5: container `app` is granted every capability \
                 (as `ocre:api` does) but its image uses none of them\n  hint: least privilege: `capabilities: []`\n",
            );
        }
        if errors > 0 {
            let plural = if errors == 1 { "" } else { "s" };
            expected.push_str(&format!(
                "error: {} is invalid ({errors} error{plural})\n",
                relative.display()
            ));
        }
        let got = stderr(&output);
        assert!(
            got == expected,
            "{}: stderr differs from {}\n--- expected\n{expected}\n--- got\n{got}",
            relative.display(),
            expected_path.display()
        );
        let has_errors = expected.lines().any(|l| l.starts_with("error:"));
        assert_eq!(
            output.status.code(),
            Some(if has_errors { 1 } else { 0 }),
            "{}: {got}",
            relative.display()
        );
    }
    assert_eq!(cases, 9);
}

#[test]
fn config_prints_the_resolved_stack_as_json_and_yaml() {
    let sandbox = Sandbox::new();
    let hello = image("hello.wasm");
    let file = sandbox.write(
        "shoal.yaml",
        &format!(
            "containers:\n  probe:\n    image: {}\n    replicas: 2\n    env: [A=1]\n",
            hello.display()
        ),
    );
    let out = sandbox.ok(&["config", "--format", "json", "-f", arg(&file)]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let name = sandbox.path().file_name().unwrap().to_str().unwrap().to_lowercase();
    assert_eq!(
        json["name"].as_str().unwrap(),
        shoal::spec::decode::sanitize_name(&name)
    );
    // compose: printed as a compose file (a mapping of containers, replicas folded back,
    // units kept), so it loads again; `tests/integration/compose.rs` feeds it back.
    let probe = &json["containers"]["probe"];
    assert_eq!(probe["replicas"], 2);
    assert_eq!(probe["image"], hello.display().to_string());
    assert_eq!(probe["env"]["A"], "1");
    assert!(probe["x-digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(probe["stop_timeout"], "10s");
    assert_eq!(probe["limits"]["memory"], "64MiB");
    assert!(json.get("file").is_none(), "{json}");

    let out = sandbox.ok(&["config", "-f", arg(&file)]);
    assert!(out.contains("\n  probe:\n") && out.contains("replicas: 2"), "{out}");
    let output = sandbox.check(&file, &[]);
    assert!(output.status.success() && output.stdout.is_empty());
}

#[test]
fn compose_yaml_is_found_in_the_current_folder_and_usage_errors_exit_2() {
    let sandbox = Sandbox::new();
    let err = sandbox.fails(&["config"], 1);
    assert!(err.contains("no shoal.yaml or compose.yaml"), "{err}");
    sandbox.write(
        "compose.yaml",
        &format!("containers:\n  a:\n    image: {}\n", image("hello.wasm").display()),
    );
    sandbox.ok(&["config", "-q"]);
    sandbox.fails(&["config", "--format", "toml"], 2);
}
