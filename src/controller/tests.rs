//! The controller's own tests (a file of its own so `controller.rs` holds only the controller).

use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::bench::{built_in_image, guests, replicated_stack};
use crate::runtime::{ExitStatus, RuntimeConfig};
use crate::supervisor::Outcome;

/// Every line the stack logs, as `container text`.
#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl LogSink for Lines {
    fn line(&self, container: &str, _: Stream, text: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{container} {text}"));
    }
}

/// A controller for `replicas` copies of `guest`, as `shoal run` builds one.
fn controller(
    dir: &std::path::Path,
    guest: &[u8],
    replicas: usize,
    log: Arc<Lines>,
) -> (Controller, HashMap<ImageRef, LoadedImage>) {
    let images = ImageStore::new(dir);
    let path = built_in_image(&images, "guest", guest).expect("guest written");
    let stack = replicated_stack(&path, replicas, &[]).expect("valid stack");
    let runtime = Arc::new(Runtime::new(&RuntimeConfig::default()).expect("runtime"));
    let modules = supervisor::load_modules(&runtime, &images, &stack, |_, _| {}).expect("images load");
    let controller = Controller::new(runtime, images, stack, log, Options::default());
    (controller, modules)
}

#[tokio::test]
async fn run_to_completion_ends_when_every_container_has_ended() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = Arc::new(Lines::default());
    let (controller, modules) = controller(dir.path(), &guests::hello().expect("hello"), 3, log.clone());
    let report = controller.run_to_completion(modules, CancellationToken::new()).await;
    assert!(!report.interrupted);
    assert!(report.is_success());
    let outcomes: Vec<_> = report.outcomes().map(|(_, o)| o.clone()).collect();
    assert_eq!(outcomes, vec![Outcome::Finished(ExitStatus::Exited(0)); 3]);
    let lines = log.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert_eq!(
        lines.iter().filter(|l| l.ends_with("exited with code 0")).count(),
        3,
        "{lines:?}"
    );
}

#[tokio::test]
async fn run_to_completion_stops_every_container_on_shutdown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (controller, modules) = controller(dir.path(), &guests::spin().expect("spin"), 2, Arc::default());
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.cancel();
    });
    let report = controller.run_to_completion(modules, shutdown).await;
    assert!(report.interrupted, "stopped from outside");
    assert!(report.is_success(), "a stack stopped by the operator is a success");
    assert!(report
        .outcomes()
        .all(|(_, outcome)| *outcome == Outcome::Finished(ExitStatus::Stopped)));
    assert_eq!(report.outcomes().count(), 2);
}
