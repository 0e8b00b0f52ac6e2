//! The `cdev` backend: one line request on the kernel's GPIO character device (uAPI v2,
//! through `gpiocdev`; never sysfs). The kernel applies direction, active-low, bias,
//! debounce and edge detection; edge events are read when the request's file becomes
//! readable (tokio's `AsyncFd`), so a quiet line costs nothing.

use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use gpiocdev::line::{Bias, EdgeDetection, EdgeKind, Value};
use gpiocdev::request::Request;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::{GpioError, Line};
use crate::spec::{GpioBias, GpioDirection, GpioEdge, GpioLineId, GpioLineSpec};

pub(super) struct CdevLine {
    request: Arc<Request>,
    offset: u32,
}

/// The request's file, for the reactor.
struct RequestFd(Arc<Request>);

impl AsRawFd for RequestFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl CdevLine {
    /// Find the chip (a path, or a chip label or name such as `gpiochip0`), find the line
    /// (an offset, or the kernel's line name), and request it as declared.
    pub fn open(spec: &GpioLineSpec, chip: &str, line: &GpioLineId) -> Result<CdevLine, GpioError> {
        let chip_error = |reason: String| GpioError::Chip {
            line: spec.name.clone(),
            location: spec.location.clone(),
            chip: chip.to_string(),
            reason,
        };
        let path = find_chip(chip).map_err(chip_error)?;
        let c = gpiocdev::Chip::from_path(&path).map_err(|e| chip_error(access_hint(&path, &e.to_string())))?;
        let info = c.info().map_err(|e| chip_error(e.to_string()))?;
        let no_line = |what: String| GpioError::NoSuchLine {
            line: spec.name.clone(),
            location: spec.location.clone(),
            chip: chip.to_string(),
            what,
        };
        let offset = match line {
            GpioLineId::Offset(o) if *o < info.num_lines => *o,
            GpioLineId::Offset(o) => {
                return Err(no_line(format!(
                    "{o} (it has {} lines, 0..{})",
                    info.num_lines, info.num_lines
                )))
            }
            GpioLineId::Name(n) => c
                .find_line_info(n)
                .map(|i| i.offset)
                .ok_or_else(|| no_line(format!("named {n:?}")))?,
        };
        let mut b = Request::builder();
        b.on_chip(&path)
            .with_consumer(format!("shoal:{}", spec.name))
            .with_line(offset);
        match spec.direction {
            GpioDirection::Output => {
                b.as_output(if spec.initial { Value::Active } else { Value::Inactive });
            }
            GpioDirection::Input => {
                b.as_input();
                if let Some(d) = spec.debounce {
                    b.with_debounce_period(d);
                }
                let edge = match spec.edge {
                    GpioEdge::None => None,
                    GpioEdge::Rising => Some(EdgeDetection::RisingEdge),
                    GpioEdge::Falling => Some(EdgeDetection::FallingEdge),
                    GpioEdge::Both => Some(EdgeDetection::BothEdges),
                };
                b.with_edge_detection(edge);
            }
        }
        if spec.active_low {
            b.as_active_low();
        }
        let bias = match spec.bias {
            GpioBias::AsIs => None,
            GpioBias::PullUp => Some(Bias::PullUp),
            GpioBias::PullDown => Some(Bias::PullDown),
            GpioBias::Disabled => Some(Bias::Disabled),
        };
        b.with_bias(bias);
        let request = b.request().map_err(|e| GpioError::Request {
            line: spec.name.clone(),
            location: spec.location.clone(),
            reason: access_hint(&path, &e.to_string()),
        })?;
        Ok(CdevLine {
            request: Arc::new(request),
            offset,
        })
    }

    pub fn get(&self) -> Result<bool, String> {
        self.request
            .value(self.offset)
            .map(|v| v == Value::Active)
            .map_err(|e| e.to_string())
    }

    pub fn set(&self, value: bool) -> Result<(), String> {
        let v = if value { Value::Active } else { Value::Inactive };
        self.request.set_value(self.offset, v).map_err(|e| e.to_string())
    }

    /// For an input with edge detection: a task that turns the kernel's edge events into
    /// [`Line`] changes until the line is dropped. `None` for outputs and `edge: none`, or
    /// when the reactor refuses the file (then the line works without events; the error
    /// is not expected on a character device).
    pub fn watch_edges(&self, line: Weak<Line>) -> Option<tokio::task::JoinHandle<()>> {
        let spec = line.upgrade()?.spec().clone();
        if spec.direction != GpioDirection::Input || spec.edge == GpioEdge::None {
            return None;
        }
        // SAFETY: `RequestFd` owns an `Arc` of the request, which owns the file: the
        // descriptor stays open, and the same, for as long as the `AsyncFd` holds it.
        let fd =
            unsafe { AsyncFd::register_with_interest(RequestFd(self.request.clone()), Interest::READABLE) }.ok()?;
        let request = self.request.clone();
        Some(tokio::spawn(async move {
            loop {
                let Ok(mut ready) = fd.readable().await else { return };
                // The file is blocking: read only what `has_edge_event` says is there.
                while request.has_edge_event().unwrap_or(false) {
                    let Ok(event) = request.read_edge_event() else { return };
                    let Some(line) = line.upgrade() else { return };
                    line.changed(event.kind == EdgeKind::Rising);
                }
                ready.clear_ready();
            }
        }))
    }
}

/// A chip by path, or by label or name among `/dev/gpiochip*`.
fn find_chip(chip: &str) -> Result<PathBuf, String> {
    if chip.starts_with('/') {
        return gpiocdev::chip::is_chip(chip).map_err(|e| access_hint(std::path::Path::new(chip), &e.to_string()));
    }
    let paths = gpiocdev::chip::chips().map_err(|e| format!("cannot list GPIO chips: {e}"))?;
    let mut seen = Vec::new();
    for path in paths {
        let Ok(c) = gpiocdev::Chip::from_path(&path) else {
            continue;
        };
        let Ok(info) = c.info() else { continue };
        if info.label == chip || info.name == chip {
            return Ok(path);
        }
        seen.push(format!("{} ({})", info.name, info.label));
    }
    Err(if seen.is_empty() {
        "no GPIO chip is visible (no /dev/gpiochip* this user can open)".to_string()
    } else {
        format!("no chip has that label; chips: {}", seen.join(", "))
    })
}

/// The error, plus what to do when it is a permission problem.
fn access_hint(path: &std::path::Path, error: &str) -> String {
    if error.contains("ermission denied") {
        format!(
            "{error}; give this user access to {} (e.g. the `gpio` group, or a udev rule)",
            path.display()
        )
    } else {
        error.to_string()
    }
}
