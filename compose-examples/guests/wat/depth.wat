;; Test guest: recurses to a fixed depth of 20,000 calls, then prints "reached depth 20000"
;; and exits 0. Each frame keeps values live across the call, so it needs at least 16 bytes
;; of native stack (the return address and frame pointer alone): 20,000 frames need more
;; than 64 KiB and far less than 4 MiB. A `--max-wasm-stack` that is parsed but not applied
;; makes both sizes behave alike; applied, 64 KiB traps and 4 MiB finishes.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "reached depth 20000\n")
  (func $down (param $n i32) (result i64)
    (local $a i64)
    (if (i32.ge_u (local.get $n) (i32.const 20000))
      (then (return (i64.const 1))))
    (local.set $a (i64.extend_i32_u (i32.mul (local.get $n) (i32.const 3))))
    (i64.add (local.get $a) (call $down (i32.add (local.get $n) (i32.const 1)))))
  (func (export "_start")
    (if (i64.eqz (call $down (i32.const 0)))
      (then unreachable))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 20))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
)
