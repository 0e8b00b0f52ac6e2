;; Hostile guest: recurses without end. Each frame keeps a few locals live, so only the
;; engine's wasm stack limit stops it: the guest must trap with a stack overflow, and
;; nothing else may notice. Written in WAT so that no optimiser turns the recursion into a
;; loop.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "recursing\n")
  (func $down (param $n i64) (result i64)
    (local $a i64) (local $b i64)
    (local.set $a (i64.mul (local.get $n) (i64.const 3)))
    (local.set $b (call $down (i64.add (local.get $n) (i64.const 1))))
    (i64.add (local.get $a) (local.get $b)))
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 10))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (drop (call $down (i64.const 0))))
)
