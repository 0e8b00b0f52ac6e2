;; Hostile guest: calls every `env` function shoal serves that takes a pointer, a length or
;; an id (all but ocre_sleep, ocre_sensors_init and ocre_sensors_discover), then WASI, with
;; pointers outside memory, huge and negative lengths, unterminated strings and unknown
;; ids. Every call must fail with an error code (a negative value, for sensor reads too);
;; none may trap, hang or touch memory it was not given.
;; Prints "badptr: all 48 env calls refused; ..." and then calls WASI `fd_write` with an
;; iovec outside memory, which WASI preview 1 says shall trap: the guest ends trapped. It
;; exits with the number of the first `env` call that unexpectedly succeeded instead.
;; Needs capabilities ocre:api and one declared sensor
;; (so that `ocre_sensors_get_list` has something to write).
;; Written in WAT because a compiler would not let most of these calls through.
(module
  (import "env" "ocre_get_event" (func $get_event (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "ocre_register_dispatcher" (func $register (param i32 i32) (result i32)))
  (import "env" "uname" (func $uname (param i32) (result i32)))
  (import "env" "ocre_publish_message" (func $publish (param i32 i32 i32 i32) (result i32)))
  (import "env" "ocre_subscribe_message" (func $subscribe (param i32) (result i32)))
  (import "env" "ocre_messaging_free_module_event_data" (func $free (param i32 i32 i32) (result i32)))
  (import "env" "ocre_timer_create" (func $t_create (param i32) (result i32)))
  (import "env" "ocre_timer_start" (func $t_start (param i32 i32 i32) (result i32)))
  (import "env" "ocre_timer_stop" (func $t_stop (param i32) (result i32)))
  (import "env" "ocre_timer_delete" (func $t_delete (param i32) (result i32)))
  (import "env" "ocre_timer_get_remaining" (func $t_remaining (param i32) (result i32)))
  (import "env" "ocre_sensors_open" (func $s_open (param i32) (result i32)))
  (import "env" "ocre_sensors_get_handle" (func $s_handle (param i32) (result i32)))
  (import "env" "ocre_sensors_get_channel_count" (func $s_count (param i32) (result i32)))
  (import "env" "ocre_sensors_get_channel_type" (func $s_type (param i32 i32) (result i32)))
  (import "env" "ocre_sensors_read" (func $s_read (param i32 i32) (result f64)))
  (import "env" "ocre_sensors_open_by_name" (func $s_open_n (param i32) (result i32)))
  (import "env" "ocre_sensors_get_handle_by_name" (func $s_handle_n (param i32) (result i32)))
  (import "env" "ocre_sensors_get_channel_count_by_name" (func $s_count_n (param i32) (result i32)))
  (import "env" "ocre_sensors_get_channel_type_by_name" (func $s_type_n (param i32 i32) (result i32)))
  (import "env" "ocre_sensors_read_by_name" (func $s_read_n (param i32 i32) (result f64)))
  (import "env" "ocre_sensors_get_list" (func $s_list (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)

  ;; 100: a good topic, 110: a good content type, 130: a good payload byte.
  (data (i32.const 100) "bad/x\00")
  (data (i32.const 110) "text/plain\00")
  (data (i32.const 130) "p")
  (data (i32.const 200) "badptr: all 48 env calls refused; now fd_write outside memory\n")

  (global $first_bad (mut i32) (i32.const 0))
  (global $calls (mut i32) (i32.const 0))

  ;; Record call number $n as unexpected when $rc is not negative.
  (func $neg (param $n i32) (param $rc i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (if (i32.ge_s (local.get $rc) (i32.const 0))
      (then (if (i32.eqz (global.get $first_bad)) (then (global.set $first_bad (local.get $n)))))))
  ;; Record call number $n as unexpected when the sensor read $v is not a negative error code
  ;; (NaN included: reads report errors as negated errno values, as the Ocre SDK says).
  (func $negf (param $n i32) (param $v f64)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (if (i32.eqz (f64.lt (local.get $v) (f64.const 0)))
      (then (if (i32.eqz (global.get $first_bad)) (then (global.set $first_bad (local.get $n)))))))

  (func (export "_start")
    (local $end i32) (local $unterm i32)
    (local.set $end (i32.const 65536))
    ;; The last 4 KiB of memory: no NUL up to the end.
    (local.set $unterm (i32.const 61440))
    (memory.fill (local.get $unterm) (i32.const 0x41) (i32.const 4096))

    ;; events and dispatchers
    (call $neg (i32.const 1) (call $get_event (local.get $end) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
    (call $neg (i32.const 2) (call $get_event (i32.const 0) (i32.const 4) (i32.const 8) (i32.const 12) (i32.const 16) (i32.const -1)))
    (call $neg (i32.const 3) (call $get_event (i32.const -4) (i32.const 4) (i32.const 8) (i32.const 12) (i32.const 16) (i32.const 20)))
    (call $neg (i32.const 4) (call $register (i32.const 3) (local.get $end)))
    (call $neg (i32.const 5) (call $register (i32.const 3) (local.get $unterm)))
    (call $neg (i32.const 6) (call $register (i32.const 99) (i32.const 110)))
    (call $neg (i32.const 7) (call $register (i32.const -1) (local.get $unterm)))
    ;; uname: 390 bytes do not fit
    (call $neg (i32.const 8) (call $uname (i32.sub (local.get $end) (i32.const 100))))
    (call $neg (i32.const 9) (call $uname (i32.const -1)))
    ;; publish
    (call $neg (i32.const 10) (call $publish (local.get $end) (i32.const 110) (i32.const 130) (i32.const 1)))
    (call $neg (i32.const 11) (call $publish (local.get $unterm) (i32.const 110) (i32.const 130) (i32.const 1)))
    (call $neg (i32.const 12) (call $publish (i32.const 100) (local.get $unterm) (i32.const 130) (i32.const 1)))
    (call $neg (i32.const 13) (call $publish (i32.const 100) (i32.const 110) (i32.sub (local.get $end) (i32.const 1)) (i32.const 2)))
    (call $neg (i32.const 14) (call $publish (i32.const 100) (i32.const 110) (i32.const 130) (i32.const -1)))
    (call $neg (i32.const 15) (call $publish (i32.const 100) (i32.const 110) (i32.const 130) (i32.const 0x7fffffff)))
    (call $neg (i32.const 16) (call $publish (i32.const 100) (i32.const 110) (i32.const 0) (i32.const 1)))
    (call $neg (i32.const 17) (call $publish (i32.const 100) (i32.const 110) (i32.const 130) (i32.const 0)))
    (call $neg (i32.const 18) (call $publish (i32.const -1) (i32.const -1) (i32.const -1) (i32.const -1)))
    (call $neg (i32.const 19) (call $publish (i32.const 100) (i32.const 110) (i32.const 60000) (i32.const 65536)))
    ;; subscribe and free
    (call $neg (i32.const 20) (call $subscribe (local.get $end)))
    (call $neg (i32.const 21) (call $subscribe (local.get $unterm)))
    (call $neg (i32.const 22) (call $subscribe (i32.const -1)))
    (call $neg (i32.const 23) (call $free (i32.const -1) (i32.const -1) (i32.const -1)))
    (call $neg (i32.const 24) (call $free (i32.const 0) (i32.const 0) (i32.const 0)))
    (call $neg (i32.const 25) (call $free (local.get $end) (local.get $end) (local.get $end)))
    ;; timers
    (call $neg (i32.const 26) (call $t_create (i32.const -1)))
    (call $neg (i32.const 27) (call $t_create (i32.const 0)))
    (call $neg (i32.const 28) (call $t_start (i32.const 12345) (i32.const 10) (i32.const 1)))
    (drop (call $t_create (i32.const 1)))
    (call $neg (i32.const 29) (call $t_start (i32.const 1) (i32.const -5) (i32.const 1)))
    (call $neg (i32.const 30) (call $t_start (i32.const 1) (i32.const 0) (i32.const 0)))
    (call $neg (i32.const 31) (call $t_stop (i32.const 999)))
    (call $neg (i32.const 32) (call $t_delete (i32.const 999)))
    (call $neg (i32.const 33) (call $t_remaining (i32.const -7)))
    (call $neg (i32.const 34) (call $t_create (i32.const 1)))
    ;; sensors
    (call $neg (i32.const 35) (call $s_open (i32.const -1)))
    (call $neg (i32.const 36) (call $s_handle (i32.const -1)))
    (call $neg (i32.const 37) (call $s_count (i32.const 99999)))
    (call $neg (i32.const 38) (call $s_type (i32.const -1) (i32.const -1)))
    (call $negf (i32.const 39) (call $s_read (i32.const -1) (i32.const -1)))
    (call $neg (i32.const 40) (call $s_open_n (local.get $unterm)))
    (call $neg (i32.const 41) (call $s_open_n (local.get $end)))
    (call $neg (i32.const 42) (call $s_handle_n (i32.const -1)))
    (call $neg (i32.const 43) (call $s_count_n (local.get $unterm)))
    (call $neg (i32.const 44) (call $s_type_n (local.get $end) (i32.const 0)))
    (call $negf (i32.const 45) (call $s_read_n (local.get $unterm) (i32.const 0)))
    (call $neg (i32.const 46) (call $s_list (local.get $end) (i32.const 5)))
    (call $neg (i32.const 47) (call $s_list (i32.const 0) (i32.const -1)))
    (call $neg (i32.const 48) (call $s_list (i32.const -4) (i32.const 0x7fffffff)))
    ;; the 4 KiB of 'A' are still there: nothing wrote past what it was given
    (if (i32.ne (i32.load8_u (i32.const 65535)) (i32.const 0x41)) (then (call $exit (i32.const 98))))
    (if (global.get $first_bad) (then (call $exit (global.get $first_bad))))
    (i32.store (i32.const 0) (i32.const 200))
    (i32.store (i32.const 4) (i32.const 62))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    ;; Last, WASI with an iovec outside memory: WASI preview 1 says that call "shall trap".
    (drop (call $fd_write (i32.const 1) (local.get $end) (i32.const 1) (i32.const 0)))
    (call $exit (i32.const 99)))
)
