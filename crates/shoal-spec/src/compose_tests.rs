//! Compose's per-environment habits: several files merged, `.env`, `--env-file`, project
//! name precedence, profiles, and the printed file loading back to the same stack.

use super::*;
use crate::tests::at_repo_root;

const GOLDEN_MERGE_DIR: &str = "tests/golden/merge";

fn no_digests(_: &ImageDigest) -> Option<PathBuf> {
    None
}

fn env_of(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn load_with(input: &ComposeFiles, env: &HashMap<String, String>) -> Result<(Stack, Vec<Diagnostic>), Vec<Diagnostic>> {
    let opts = LoadOptions {
        env,
        lookup_digest: &no_digests,
        resolve_reference: &crate::no_registry,
    };
    load_files(input, &opts)
}

fn files(paths: &[PathBuf]) -> ComposeFiles {
    ComposeFiles {
        files: paths.to_vec(),
        ..Default::default()
    }
}

/// A folder with an image and the given files.
fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("board").tempdir().unwrap();
    std::fs::write(dir.path().join("m.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// The stack as `shoal config` prints it.
fn printed(stack: &Stack, env: &HashMap<String, String>) -> String {
    serde_saphyr::to_string(&render::to_compose(stack, env, &|_| None)).unwrap()
}

/// Everything a running stack is made of, without the source locations and file names.
fn model(stack: &Stack) -> serde_json::Value {
    let mut v = serde_json::to_value(stack).unwrap();
    let m = v.as_object_mut().unwrap();
    m.remove("file");
    m.remove("dir");
    v
}

/// Each folder of `tests/golden/merge` holds compose files merged in name order (and maybe a
/// `.env`); `expected.out` is the diagnostics, then the merged file as `shoal config`
/// prints it. Regenerate with `SHOAL_UPDATE_GOLDEN=1 cargo test -p shoal-spec golden`.
#[test]
fn golden_merge_rules() {
    at_repo_root();
    let mut run = crate::golden::Run::new("SHOAL_UPDATE_GOLDEN");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(GOLDEN_MERGE_DIR)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 3);
    let root = std::env::current_dir().unwrap().display().to_string();
    let env = env_of(&[("SHOAL_BOARD_ID", "golden"), ("FROM_PROCESS", "process")]);
    for case in cases {
        let mut yamls: Vec<PathBuf> = std::fs::read_dir(&case)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        yamls.sort();
        let got = match load_with(&files(&yamls), &env) {
            Ok((stack, warnings)) => format!("{}---\n{}", render_diagnostics(&warnings), printed(&stack, &env)),
            Err(errors) => render_diagnostics(&errors),
        }
        .replace(&root, "$ROOT");
        run.text(&case.join("expected.out"), &got);
    }
    run.finish("golden merges differ (regenerate with `SHOAL_UPDATE_GOLDEN=1 cargo test -p shoal-spec golden`)");
}

#[test]
fn a_diagnostic_from_an_override_file_names_that_file() {
    let p = project(&[
        ("shoal.yaml", "containers:\n  app:\n    image: m.wasm\n"),
        ("board.yaml", "containers:\n  app:\n    replicas: lots\n"),
    ]);
    let e = load_with(
        &files(&[p.path().join("shoal.yaml"), p.path().join("board.yaml")]),
        &HashMap::new(),
    )
    .unwrap_err();
    let text = render_diagnostics(&e);
    assert!(
        text.contains("board.yaml:3:15: `replicas` must be an integer"),
        "{text}"
    );
}

#[test]
fn printed_config_loads_back_to_the_same_stack() {
    let base = "name: line-3\nx-common: &common\n  restart: on-failure:3\nsensors:\n  temp: {kind: rng, channels: 2, range: [1, 5]}\ngpio:\n  button: {kind: sim, direction: input, debounce: 5ms}\n  led: {kind: sim, direction: output, initial: 1, bias: pull-up}\nbridges:\n  up:\n    url: mqtt://127.0.0.1\n    username_env: U\n    export: [s/]\n    import: [{remote: \"c/+/x/#\", local: cmd/, qos: 0}]\ncontainers:\n  db:\n    image: m.wasm\n    capabilities: [gpio]\n    gpio: [led]\n  app:\n    <<: *common\n    image: m.wasm\n    args: [--cost, \"5$$\", 7]\n    env: [A=1, \"B=$${HOME}\", C=true]\n    capabilities: [messaging, sensors, gpio]\n    mounts: [\"./data:/data:ro\"]\n    depends_on: [db]\n    limits: {memory: 3MiB, cpu: 25%, queue: 16}\n    stop_timeout: 1m 30s\n    replicas: 2\n    publish: [a/]\n    subscribe: [b/]\n    sensors: [temp]\n    gpio: [button]\n";
    let p = project(&[("shoal.yaml", base), ("data/x", "")]);
    let env = env_of(&[("SHOAL_BOARD_ID", "b1"), ("U", "user")]);
    let (first, warnings) = load_with(&files(&[p.path().join("shoal.yaml")]), &env).unwrap();
    assert!(warnings.is_empty(), "{}", render_diagnostics(&warnings));
    let text = printed(&first, &env);
    assert!(
        !text.contains("\nfile:") && text.contains("containers:\n  db:"),
        "{text}"
    );
    assert!(
        text.contains("memory: 3MiB") && text.contains("stop_timeout: 1m 30s"),
        "{text}"
    );
    assert!(
        !text.contains("client_id"),
        "this board's default id is left out:\n{text}"
    );
    let again = p.path().join("printed.yaml");
    std::fs::write(&again, &text).unwrap();
    let (second, warnings) =
        load_with(&files(&[again]), &env).unwrap_or_else(|e| panic!("{}\n{text}", render_diagnostics(&e)));
    assert!(warnings.is_empty(), "{}", render_diagnostics(&warnings));
    assert_eq!(model(&first), model(&second), "printed:\n{text}");
    assert_eq!(first.containers[1].env[1].1, "${HOME}");
}

#[test]
fn override_file_beside_the_main_file_is_merged() {
    let p = project(&[
        ("compose.yaml", "containers:\n  app:\n    image: m.wasm\n"),
        ("compose.override.yaml", "containers:\n  app:\n    replicas: 2\n"),
    ]);
    let found = ComposeFiles::resolve_files(&[p.path().to_path_buf()]).unwrap();
    let (stack, _) = load_with(&files(&found), &HashMap::new()).unwrap();
    assert_eq!(stack.containers.len(), 2);
    assert_eq!(stack.compose.files, found);
}

#[test]
fn dotenv_env_file_and_process_precedence() {
    let yaml = "containers:\n  app:\n    image: m.wasm\n    env: {A: \"${A}\", B: \"${B}\", C: \"${C:-none}\"}\n";
    let p = project(&[
        ("shoal.yaml", yaml),
        (".env", "A=dotenv\nB=dotenv\n"),
        ("board.env", "C=board\n"),
    ]);
    let main = p.path().join("shoal.yaml");
    let env = env_of(&[("B", "process")]);
    let (stack, _) = load_with(&files(std::slice::from_ref(&main)), &env).unwrap();
    let got: Vec<&str> = stack.containers[0].env.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(got, ["dotenv", "process", "none"]);
    assert!(
        stack.env_files.contains(&p.path().join(".env")),
        "{:?}",
        stack.env_files
    );
    // --env-file replaces `.env`.
    let input = ComposeFiles {
        env_files: Some(vec![p.path().join("board.env")]),
        ..files(std::slice::from_ref(&main))
    };
    let (stack, warnings) = load_with(&input, &env).unwrap();
    let got: Vec<&str> = stack.containers[0].env.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(got, ["", "process", "board"]);
    let text = render_diagnostics(&warnings);
    assert!(
        text.contains("variable `A` is not set in the environment nor in `") && text.contains("board.env"),
        "{text}"
    );
    // A missing --env-file is an error, as in Compose.
    let input = ComposeFiles {
        env_files: Some(vec![p.path().join("nope.env")]),
        ..files(&[main])
    };
    let text = render_diagnostics(&load_with(&input, &env).unwrap_err());
    assert!(
        text.contains("nope.env: no such file") && text.contains("--env-file"),
        "{text}"
    );
}

#[test]
fn project_name_precedence_flag_env_file_folder() {
    let p = project(&[(
        "shoal.yaml",
        "name: from-file\ncontainers:\n  app:\n    image: m.wasm\n",
    )]);
    let main = p.path().join("shoal.yaml");
    let name = |input: &ComposeFiles, env: &HashMap<String, String>| load_with(input, env).unwrap().0.name.to_string();
    assert_eq!(name(&files(std::slice::from_ref(&main)), &HashMap::new()), "from-file");
    let env = env_of(&[(PROJECT_NAME_VAR, "from-env")]);
    assert_eq!(name(&files(std::slice::from_ref(&main)), &env), "from-env");
    let flagged = ComposeFiles {
        project_name: Some(ProjectName::try_from("from-flag".to_string()).unwrap()),
        ..files(std::slice::from_ref(&main))
    };
    assert_eq!(name(&flagged, &env), "from-flag");
    std::fs::write(p.path().join(".env"), "SHOAL_PROJECT_NAME=from-dotenv\n").unwrap();
    assert_eq!(
        name(&files(std::slice::from_ref(&main)), &HashMap::new()),
        "from-dotenv"
    );
    let bad = env_of(&[(PROJECT_NAME_VAR, "Not Valid")]);
    let text = render_diagnostics(&load_with(&files(&[main]), &bad).unwrap_err());
    assert!(
        text.contains("SHOAL_PROJECT_NAME=`Not Valid` is not a valid project name"),
        "{text}"
    );
}

#[test]
fn profiles_select_containers_and_guard_dependencies() {
    let yaml = "containers:\n  app:\n    image: m.wasm\n  debug:\n    image: m.wasm\n    profiles: [debug]\n  probe:\n    image: m.wasm\n    profiles: [test, debug]\n";
    let p = project(&[("shoal.yaml", yaml)]);
    let main = p.path().join("shoal.yaml");
    let names = |profiles: Option<Vec<&str>>, env: &HashMap<String, String>| -> Vec<String> {
        let input = ComposeFiles {
            profiles: profiles.map(|p| p.into_iter().map(String::from).collect()),
            ..files(std::slice::from_ref(&main))
        };
        let (stack, _) = load_with(&input, env).unwrap();
        let mut names: Vec<String> = stack.containers.iter().map(|c| c.name.to_string()).collect();
        names.sort();
        names
    };
    let none = HashMap::new();
    assert_eq!(names(None, &none), ["app"]);
    assert_eq!(names(Some(vec!["test"]), &none), ["app", "probe"]);
    assert_eq!(names(Some(vec!["*"]), &none), ["app", "debug", "probe"]);
    assert_eq!(
        names(None, &env_of(&[("SHOAL_PROFILES", "debug")])),
        ["app", "debug", "probe"]
    );
    // The flag wins over the variable.
    assert_eq!(
        names(Some(vec!["test"]), &env_of(&[("SHOAL_PROFILES", "debug")])),
        ["app", "probe"]
    );

    let dep = "containers:\n  app:\n    image: m.wasm\n    depends_on: [debug]\n  debug:\n    image: m.wasm\n    profiles: [debug]\n";
    std::fs::write(&main, dep).unwrap();
    let text = render_diagnostics(&load_with(&files(std::slice::from_ref(&main)), &none).unwrap_err());
    assert!(
        text.contains(
            "shoal.yaml:4:18: container `app` depends on `debug`, which is only in profile `debug` (not enabled)"
        ) && text.contains("--profile debug"),
        "{text}"
    );
    std::fs::write(&main, "containers:\n  a:\n    image: m.wasm\n    profiles: [x]\n").unwrap();
    let text = render_diagnostics(&load_with(&files(&[main]), &none).unwrap_err());
    assert!(
        text.contains("every container is in a profile that is not enabled (profiles: x)"),
        "{text}"
    );
}

#[test]
fn include_and_extends_are_refused_with_the_override_hint() {
    let yaml = "include: [other.yaml]\ncontainers:\n  app:\n    image: m.wasm\n    extends: {service: base}\n";
    let p = project(&[("shoal.yaml", yaml)]);
    let text = render_diagnostics(&load_with(&files(&[p.path().join("shoal.yaml")]), &HashMap::new()).unwrap_err());
    assert!(
        text.contains("shoal.yaml:1:1: `include` is not supported") && text.contains("-f base.yaml -f board.yaml"),
        "{text}"
    );
    assert!(text.contains("shoal.yaml:5:5: `extends` is not supported"), "{text}");
}
