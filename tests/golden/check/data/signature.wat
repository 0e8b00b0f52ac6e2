;; Imports known functions with signatures shoal does not serve them with, and a WASI name
;; preview 1 does not have. Each fails at link time.
(module
  (import "env" "memory" (memory 2 64))
  ;; The SDK declares ocre_sleep(int ms) -> int: (param i32) (result i32).
  (import "env" "ocre_sleep" (func (param i64) (result i32)))
  ;; fd_write takes four i32s.
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "thread_spawn" (func (param i32) (result i32)))
  (export "memory" (memory 0))
  (func (export "_start")))
