//! A misbehaving guest for shoal's isolation tests: the first argument picks what it does
//! wrong (see `compose-examples/guests/HOSTILE.md` for what shoal does about each; the
//! stack overflow and bad-pointer cases are WAT files in `wat/`).
//!
//! | mode | does |
//! |---|---|
//! | `oom` | allocates 256 KiB blocks (and touches them) until an allocation fails |
//! | `grow` | `memory.grow` one page at a time until it returns -1, then exits 3 |
//! | `spin` | loops forever without a host call |
//! | `pubflood [N]` | publishes N messages (default 200000) on `flood/<n>` as fast as it can |
//! | `deaf PREFIX` | subscribes to PREFIX, then never reads (plain sleeps forever) |
//! | `substorm` | subscribes to `storm/<i>` until refused, then 10000 more attempts |
//! | `timerstorm` | creates timers until refused, runs them at 1 ms, churns ids, exits 0 with them armed |
//! | `stdout [MiB]` | writes MiB (default 100) of 1 KiB lines to stdout, then exits 0 |
//! | `longlines [N] [KiB]` | writes N (default 1200) lines of KiB (default 16) KiB each to stdout, then exits 0 |
//! | `exit-in-callback` | subscribes to `seq/`, and on its first message (copies not freed, a timer armed) exits 7 |
//! | `orphan-check` | reports any timer event it gets before creating a timer, then arms one and exits 1 |

use std::hint::black_box;
use std::io::Write;
use std::process::exit;

use shoal_guest::sys;

fn arg(n: usize) -> Option<String> {
    std::env::args().nth(n)
}

fn number(n: usize, default: u64) -> u64 {
    arg(n).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn main() {
    let mode = arg(1).unwrap_or_default();
    println!("hostile: {mode}");
    match mode.as_str() {
        "oom" => oom(),
        "grow" => grow(),
        "spin" => spin(),
        "pubflood" => pubflood(number(2, 200_000)),
        "deaf" => deaf(&arg(2).unwrap_or_else(|| "flood/".into())),
        "substorm" => substorm(),
        "timerstorm" => timerstorm(),
        "stdout" => flood_stdout(number(2, 100)),
        "longlines" => long_lines(number(2, 1200), number(3, 16)),
        "exit-in-callback" => exit_in_callback(),
        "orphan-check" => orphan_check(),
        other => {
            eprintln!("hostile: unknown mode `{other}`");
            exit(2);
        }
    }
}

fn oom() {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        // Touch every page so the memory is really used, not only reserved.
        blocks.push(vec![0xa5; 256 << 10]);
        if blocks.len().is_multiple_of(16) {
            println!("hostile: holding {} MiB", blocks.len() / 4);
        }
    }
}

fn grow() {
    let mut pages = core::arch::wasm32::memory_size(0);
    loop {
        if core::arch::wasm32::memory_grow(0, 1) == usize::MAX {
            println!("hostile: memory.grow refused at {pages} pages");
            exit(3);
        }
        pages += 1;
    }
}

fn spin() -> ! {
    let mut x: u64 = 0;
    loop {
        x = black_box(x.wrapping_add(1));
    }
}

fn pubflood(count: u64) {
    let mut refused = 0u64;
    for n in 0..count {
        let topic = format!("flood/{n}");
        if shoal_guest::publish(&topic, "text/plain", topic.as_bytes()).is_err() {
            refused += 1;
        }
    }
    println!("hostile: published {count} messages ({refused} refused)");
}

fn deaf(prefix: &str) -> ! {
    if let Err(e) = shoal_guest::subscribe(prefix) {
        eprintln!("hostile: {e}");
        exit(1);
    }
    println!("hostile: subscribed to {prefix}, never reading");
    loop {
        // A plain sleep (no ocre_get_event before it): the mailbox is never read.
        let _ = shoal_guest::sleep(3_600_000);
    }
}

fn substorm() {
    let mut n = 0u32;
    let code = loop {
        match shoal_guest::subscribe(&format!("storm/{n}")) {
            Ok(()) => n += 1,
            Err(e) => break e.code,
        }
        if n == 10_000_000 {
            break 0;
        }
    };
    let mut refused = 0;
    for i in 0..10_000 {
        if shoal_guest::subscribe(&format!("storm/x{i}")).is_err() {
            refused += 1;
        }
    }
    println!("hostile: {n} subscriptions, then {code}; {refused} of 10000 more refused");
}

fn timerstorm() {
    let mut created = 0i32;
    let code = loop {
        let rc = unsafe { sys::ocre_timer_create(created + 1) };
        if rc != 0 {
            break rc;
        }
        created += 1;
        if created == 1_000_000 {
            break 0;
        }
    };
    for id in 1..=created {
        unsafe { sys::ocre_timer_start(id, 1, 1) };
    }
    // Churn: delete and re-create ids while they fire.
    for round in 0..20_000 {
        let id = round % created.max(1) + 1;
        unsafe {
            sys::ocre_timer_delete(id);
            sys::ocre_timer_create(id);
            sys::ocre_timer_start(id, 1, 1);
        }
    }
    let mut events = 0u32;
    while events < 5_000 {
        if let shoal_guest::Event::Timer { .. } = shoal_guest::next_event() {
            events += 1;
        }
    }
    println!("hostile: {created} timers, then {code}; {events} timer events; exiting with them armed");
}

/// The log flood of issue 16: long lines, as fast as the host takes them.
fn long_lines(count: u64, kib: u64) {
    let mut line = vec![b'y'; (kib as usize * 1024).saturating_sub(1)];
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    for _ in 0..count {
        let _ = out.write_all(&line);
    }
    let _ = out.flush();
}

fn flood_stdout(mib: u64) {
    let line = [b'x'; 1023];
    let mut out = std::io::stdout().lock();
    for _ in 0..mib * 1024 {
        let _ = out.write_all(&line);
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
    eprintln!("hostile: wrote {mib} MiB to stdout");
}

fn exit_in_callback() -> ! {
    let ok = shoal_guest::register_dispatcher(shoal_guest::EventKind::Message)
        .and_then(|_| shoal_guest::subscribe("seq/"))
        .and_then(|_| shoal_guest::register_dispatcher(shoal_guest::EventKind::Timer))
        .and_then(|_| shoal_guest::Timer::create(1))
        .and_then(|t| t.start(5, true));
    if let Err(e) = ok {
        eprintln!("hostile: {e}");
        exit(1);
    }
    loop {
        let mut s = [0u32; 6];
        let rc = unsafe {
            let p = s.as_mut_ptr();
            sys::ocre_get_event(p, p.add(1), p.add(2), p.add(3), p.add(4), p.add(5))
        };
        if rc == 0 && s[0] == sys::EVENT_MESSAGE as u32 {
            // In the middle of handling it: the host's copies are not freed, timer 1 is armed.
            println!("hostile: exiting inside the message handler");
            exit(7);
        }
        if rc != 0 {
            unsafe { sys::ocre_sleep(1000) };
        }
    }
}

fn orphan_check() -> ! {
    let _ = shoal_guest::register_dispatcher(shoal_guest::EventKind::Timer);
    // No timer of ours exists yet: any timer event now was left by someone else. (The WASI
    // clock sleeps here: an `ocre_sleep` right after an empty poll would wait for an event.)
    for _ in 0..20 {
        if let Some(event) = shoal_guest::poll_event() {
            println!("hostile: ORPHAN event before creating any timer: {event:?}");
            exit(9);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    println!("hostile: no orphan events");
    let timer = shoal_guest::Timer::create(1).and_then(|t| t.start(2, true).map(|_| t));
    if let Err(e) = timer {
        eprintln!("hostile: {e}");
        exit(2);
    }
    let mut seen = 0;
    while seen < 3 {
        if let shoal_guest::Event::Timer { id: 1 } = shoal_guest::next_event() {
            seen += 1;
        }
    }
    println!("hostile: exiting with timer 1 armed");
    exit(1);
}
